package build_service.make_args_test

import data.build_service.fixtures
import data.build_service.make_args

denials(req) := d if {
	d := make_args.deny with input as req with data.config as fixtures.config
}

assignment(name, op, source) := {"name": name, "op": op, "value": "x", "source": source}

test_plain_targets_and_assignments_are_not_denied if {
	count(denials(fixtures.with_make({"assignments": [assignment("CFLAGS", "=", "argv"), assignment("V", ":=", "argv")]}))) == 0
}

test_arguments_make_would_reject_are_refused_with_the_parsers_message if {
	denials(fixtures.with_make({"argv": [], "parse_error": "option '--directory' requires an argument"})) == {{
		"rule": "make_args.parse_error",
		"reason": "make arguments not understood: option '--directory' requires an argument",
	}}
}

test_eval_is_refused if {
	denials(fixtures.with_make({"eval": ["include /etc/evil.mk"]})) == {{
		"rule": "make_args.eval",
		"reason": "--eval/-E is denied: it lets make read code and files that no path check sees",
	}}
}

test_a_shell_assignment_is_refused if {
	denials(fixtures.with_make({"assignments": [assignment("X", "!=", "argv")]})) == {{
		"rule": "make_args.shell_assignment",
		"reason": "assignment X != ... is denied: it runs a shell command while make reads its command line",
	}}
}

test_a_shell_assignment_smuggled_in_MAKEFLAGS_is_refused if {
	some d in denials(fixtures.with_make({"assignments": [assignment("X", "!=", "MAKEFLAGS")]}))
	d.reason == "assignment X != ... (from MAKEFLAGS) is denied: it runs a shell command while make reads its command line"
}

test_each_variable_that_changes_what_make_reads_is_refused if {
	every name in ["MAKEFILES", "SHELL", ".SHELLFLAGS", "MAKE"] {
		some d in denials(fixtures.with_make({"assignments": [assignment(name, "=", "argv")]}))
		d.rule == "make_args.denied_variable"
		startswith(d.reason, sprintf("command-line assignment of %s is denied: ", [name]))
	}
}

test_a_denied_variable_from_GNUMAKEFLAGS_says_where_it_came_from if {
	some d in denials(fixtures.with_make({"assignments": [assignment("SHELL", "+=", "GNUMAKEFLAGS")]}))
	d.reason == "command-line assignment of SHELL (from GNUMAKEFLAGS) is denied: it changes the program that runs every recipe"
}

test_an_operator_can_allow_each_one_in_data if {
	req := fixtures.with_make({
		"eval": ["x := 1"],
		"assignments": [assignment("X", "!=", "argv"), assignment("SHELL", "=", "argv"), assignment("MAKE", "=", "argv")],
	})
	d := make_args.deny with input as req
		with data.config as fixtures.config
		with data.build_service.settings.make_args as {
			"allow_eval": true,
			"allow_shell_assignments": true,
			"allow_variables": ["SHELL"],
		}
	{x.reason | some x in d} == {"command-line assignment of MAKE is denied: it changes the program that sub-makes run"}
}

test_a_setting_that_is_not_true_allows_nothing if {
	d := make_args.deny with input as fixtures.with_make({"eval": ["x := 1"]})
		with data.config as fixtures.config
		with data.build_service.settings.make_args as {"allow_eval": "yes"}
	count(d) == 1
}

valued(name, value) := {"name": name, "op": ":=", "value": value, "source": "argv"}

test_attack_functions_in_an_assignment_value_are_refused if {
	every value in [
		"$(eval SHELL:=/bin/bash)",
		"${eval include /etc/evil.mk}",
		"$(eval\tinclude /x)",
		"$(shell id)",
		"$(file </etc/shadow)",
		"$(guile (system))",
		"$(call eval,include /x)",
		"$(call $(subst Z,e,Zval),SHELL:=/bin/sh)",
		"-O2 $(if 1,$(eval X:=1))",
		"$$(eval -include /x)",
	] {
		some d in denials(fixtures.with_make({"assignments": [valued("CFLAGS", value)]}))
		d.rule == "make_args.function_in_value"
	}
}

test_the_function_is_named_in_the_reason if {
	denials(fixtures.with_make({"assignments": [valued("X", "$(eval SHELL:=/bin/sh)")]})) == {{
		"rule": "make_args.function_in_value",
		"reason": "assignment X calls $(eval ...): it runs make code, a command or a file no path check sees; give it a literal value",
	}}
}

test_ordinary_references_in_values_are_not_refused if {
	every value in ["$(BASE_CFLAGS) -O2", "$(HOME)/x", "${evaluate}", "$(shellcheck)", "$(eval)", "$(files) x", "$$HOME"] {
		count(denials(fixtures.with_make({"assignments": [valued("CFLAGS", value)]}))) == 0
	}
}

test_attack_a_function_in_a_passed_environment_variable_is_refused if {
	denials(object.union(fixtures.with_make({}), {"env": {"CFLAGS": "$(eval SHELL:=/bin/sh)"}})) == {{
		"rule": "make_args.function_in_env",
		"reason": "CFLAGS calls $(eval ...): make imports it as a variable, so it runs make code, a command or a file no path check sees; give it a literal value",
	}}
}

test_a_variable_that_is_not_passed_is_not_judged if {
	count(denials(object.union(fixtures.with_make({}), {"env": {"NOT_ALLOWED": "$(shell id)"}}))) == 0
}

test_an_operator_can_allow_functions_in_values if {
	req := fixtures.with_make({"assignments": [valued("A", "$(eval X:=1)"), valued("B", "$(shell id)")]})
	d := make_args.deny with input as req
		with data.config as fixtures.config
		with data.build_service.settings.make_args as {"allow_eval": true}
	{x.reason | some x in d} == {"assignment B calls $(shell ...): it runs make code, a command or a file no path check sees; give it a literal value"}
}
