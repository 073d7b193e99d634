package build_service.load_test

import data.build_service.fixtures
import data.build_service.load

denials(user, total) := d if {
	d := load.deny with input as fixtures.with_input({"load": {"user": user, "total": total}})
		with data.config as fixtures.config
}

test_builds_up_to_the_caps_are_allowed if {
	count(denials(2, 8)) == 0
}

test_one_build_over_the_per_user_cap_is_refused if {
	denials(3, 3) == {{
		"rule": "load.user_cap",
		"reason": "you already have 2 builds running (build.limits.max_builds_per_user = 2): wait for one to finish",
	}}
}

test_one_build_over_the_total_cap_is_refused if {
	denials(1, 9) == {{
		"rule": "load.total_cap",
		"reason": "the host is running 8 builds (build.limits.max_builds_total = 8): try again shortly",
	}}
}

test_zero_caps_mean_unlimited if {
	d := load.deny with input as fixtures.with_input({"load": {"user": 100, "total": 1000}})
		with data.config as {"build": {"limits": {"max_builds_per_user": 0}}}
	count(d) == 0
}
