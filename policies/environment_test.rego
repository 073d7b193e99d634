package build_service.environment_test

import data.build_service.environment
import data.build_service.fixtures

env(req) := e if {
	e := environment.env with input as req with data.config as fixtures.config
}

denials(req) := d if {
	d := environment.deny with input as req with data.config as fixtures.config
}

test_allowlisted_variables_pass_and_others_are_dropped if {
	e := env(fixtures.with_input({"env": {"CFLAGS": "-O2", "LDFLAGS": "-lm", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "LD_PRELOAD": "/x.so"}}))
	e == {
		"CFLAGS": "-O2",
		"LDFLAGS": "-lm",
		"HOME": "/home/alice",
		"USER": "alice",
		"LOGNAME": "alice",
		"PATH": "/usr/local/bin:/usr/bin:/bin",
	}
}

test_HOME_USER_LOGNAME_and_PATH_never_come_from_the_client if {
	# HOME is even on the allowlist of the fixture config: it still loses.
	e := env(fixtures.with_input({"env": {"HOME": "/root", "USER": "root", "LOGNAME": "root", "PATH": "/tmp/evil"}}))
	e.HOME == "/home/alice"
	e.USER == "alice"
	e.LOGNAME == "alice"
	e.PATH == "/usr/local/bin:/usr/bin:/bin"
}

test_an_unknown_account_gets_only_PATH if {
	env(fixtures.with_input({"account": {"known": false}})) == {"CFLAGS": "-O2", "PATH": "/usr/local/bin:/usr/bin:/bin"}
}

test_MAKEFLAGS_reaches_make_whose_facts_confine_it if {
	count(denials(fixtures.with_input({"env": {"MAKEFLAGS": "-j2"}}))) == 0
}

test_MAKEFLAGS_is_refused_for_a_command_whose_arguments_are_not_parsed if {
	denials(fixtures.with_input({"make": null, "request": {"command": "ninja"}, "env": {"MAKEFLAGS": "-j2"}})) == {{
		"rule": "environment.make_variable_unparsed",
		"reason": `MAKEFLAGS cannot be passed to "ninja": only make's own arguments are parsed and confined`,
	}}
}

test_variables_that_load_code_are_refused_even_when_allowlisted if {
	every name in ["BASH_ENV", "ENV", "LD_PRELOAD", "LD_AUDIT"] {
		d := environment.deny with input as fixtures.with_input({"env": {name: "/tmp/x"}})
			with data.config as {"build": {"environment": {"allow": [name], "path": "/bin"}}}
		some x in d
		x.rule == "environment.code_loading_variable"
		startswith(x.reason, sprintf("%s cannot be passed to the build: ", [name]))
	}
}

test_a_code_loading_variable_that_is_not_allowlisted_is_just_dropped if {
	count(denials(fixtures.with_input({"env": {"LD_PRELOAD": "/tmp/x.so"}}))) == 0
}
