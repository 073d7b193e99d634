package build_service.decision_test

import data.build_service
import data.build_service.fixtures

test_good_request_is_allowed_with_the_full_decision if {
	d := build_service.decision with input as fixtures.input_ok with data.config as fixtures.config
	d == {
		"allow": true,
		"reasons": [],
		"denials": [],
		"timeout_sec": 600,
		"env": {
			"CFLAGS": "-O2",
			"HOME": "/home/alice",
			"USER": "alice",
			"LOGNAME": "alice",
			"PATH": "/usr/local/bin:/usr/bin:/bin",
		},
		"limits": {"pids_max": 512, "memory_max": 4294967296, "cpu_max": ""},
		"no_new_privs": true,
	}
}

test_reasons_follow_the_order_of_concerns if {
	req := fixtures.with_input({
		"peer": {"uid": 0},
		"request": {"command": "gcc"},
		"load": {"user": 3},
	})
	d := build_service.decision with input as req with data.config as fixtures.config
	d.allow == false
	[r | some x in d.denials; r := x.rule] == ["identity.root_caller", "command.not_allowed", "load.user_cap"]
	count(d.reasons) == 3
}

test_a_denied_decision_still_carries_every_key if {
	d := build_service.decision with input as fixtures.with_input({"timeout": {"requested_sec": -5}})
		with data.config as fixtures.config
	d.allow == false
	object.keys(d) == {"allow", "reasons", "denials", "timeout_sec", "env", "limits", "no_new_privs"}
}
