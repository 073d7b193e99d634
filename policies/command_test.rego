package build_service.command_test

import data.build_service.command
import data.build_service.fixtures

denials(patch) := d if {
	d := command.deny with input as fixtures.with_input(patch) with data.config as fixtures.config
}

test_make_is_allowed if {
	count(denials({})) == 0
}

test_a_command_outside_the_allowlist_is_refused_naming_the_allowed_ones if {
	denials({"request": {"command": "gcc"}}) == {{
		"rule": "command.not_allowed",
		"reason": `command "gcc" is not allowed (allowed: make)`,
	}}
}

test_an_absolute_path_is_not_a_command_name if {
	some d in denials({"request": {"command": "/usr/bin/make"}})
	d.rule == "command.not_allowed"
}

test_doctor_requests_are_a_known_type if {
	count(denials({"request": {"type": "doctor"}})) == 0
}

test_an_unknown_request_type_is_refused if {
	denials({"request": {"type": "shell"}}) == {{
		"rule": "command.unknown_type",
		"reason": `request type "shell" is not supported (supported: build, doctor)`,
	}}
}
