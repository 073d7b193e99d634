package build_service.timeout_test

import data.build_service.fixtures
import data.build_service.timeout

asked(n) := {"deny": d, "sec": s} if {
	req := fixtures.with_input({"timeout": {"requested_sec": n}})
	d := timeout.deny with input as req with data.config as fixtures.config
	s := timeout.timeout_sec with input as req with data.config as fixtures.config
}

test_no_timeout_asked_gets_the_default if {
	asked(null) == {"deny": set(), "sec": 600}
}

test_a_timeout_within_the_cap_is_used_as_asked if {
	asked(1).sec == 1
	asked(3600).sec == 3600
	count(asked(3600).deny) == 0
}

test_a_timeout_above_the_cap_is_capped if {
	asked(86400) == {"deny": set(), "sec": 3600}
}

test_zero_and_negative_timeouts_are_refused if {
	every n in [0, -1] {
		asked(n).deny == {{
			"rule": "timeout.not_positive",
			"reason": sprintf("timeout of %d seconds is refused: ask for 1 to 3600 seconds, or leave it out for the default (600)", [n]),
		}}
	}
}
