package build_service.limits_test

import data.build_service.fixtures
import data.build_service.limits

test_limits_come_from_the_config_with_memory_in_bytes if {
	l := limits.limits with data.config as fixtures.config
	l == {"pids_max": 512, "memory_max": 4294967296, "cpu_max": ""}
}

test_no_limits_configured_means_none if {
	l := limits.limits with data.config as {"build": {}}
	l == {"pids_max": 0, "memory_max": 0, "cpu_max": ""}
}

test_no_new_privs_is_on_unless_the_config_turns_it_off if {
	limits.no_new_privs with data.config as fixtures.config
	limits.no_new_privs with data.config as {"build": {"limits": {"no_new_privs": true}}}
	not limits.no_new_privs with data.config as {"build": {"limits": {"no_new_privs": false}}}
}
