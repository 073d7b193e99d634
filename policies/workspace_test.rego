package build_service.workspace_test

import data.build_service.fixtures
import data.build_service.workspace

denials(req) := d if {
	d := workspace.deny with input as req with data.config as fixtures.config
}

rules(req) := {d.rule | some d in denials(req)}

outside(option, arg, resolved) := fixtures.path_fact(option, arg, resolved, false)

inside(option, arg) := fixtures.path_fact(option, arg, concat("", [fixtures.ws, "/x"]), true)

test_a_build_in_the_workspace_is_not_denied if {
	count(denials(fixtures.input_ok)) == 0
}

test_a_missing_workspace_is_refused if {
	denials(fixtures.with_input({"workspace": {"exists": false, "safe": false}})) == {{
		"rule": "workspace.missing",
		"reason": "the workspace /srv/ws/alice/workspace does not exist on the host: ask an administrator to create it",
	}}
}

test_a_workspace_others_can_write_is_refused_with_the_mappers_reason if {
	denials(fixtures.with_input({"workspace": {"safe": false, "unsafe_reason": "/srv/ws is writable by others"}})) == {{
		"rule": "workspace.unsafe",
		"reason": "the workspace /srv/ws/alice/workspace is not safe to build in: /srv/ws is writable by others",
	}}
}

test_an_unsafe_workspace_without_a_reason_still_says_why if {
	some d in denials(fixtures.with_input({"workspace": {"safe": false}}))
	endswith(d.reason, "ownership or permissions")
}

test_a_cwd_outside_every_mapping_is_refused if {
	denials(fixtures.with_input({"cwd": {"container": "/opt/src", "host": "", "resolved": "", "mapped": false, "inside_workspace": false}})) == {{
		"rule": "workspace.cwd_unmapped",
		"reason": "cwd /opt/src is outside your workspace /home/alice",
	}}
}

test_a_cwd_whose_symlink_leads_out_is_refused if {
	denials(fixtures.with_input({"cwd": {"container": "/home/alice/link", "resolved": "/etc", "inside_workspace": false}})) == {{
		"rule": "workspace.cwd_outside",
		"reason": "cwd /home/alice/link leaves the workspace /srv/ws/alice/workspace",
	}}
}

test_a_cwd_that_is_a_file_is_refused if {
	rules(fixtures.with_input({"cwd": {"is_dir": false}})) == {"workspace.cwd_not_directory"}
}

test_dash_C_dot_dot_is_refused_as_the_user_spelled_it if {
	req := fixtures.with_make({
		"directories": [outside("-C", "../../etc", "/etc")],
		"effective_dir": "/etc",
		"effective_dir_inside_workspace": false,
	})
	denials(req) == {{
		"rule": "workspace.directory_outside",
		"reason": "-C ../../etc leaves the workspace /srv/ws/alice/workspace",
	}}
}

test_a_directory_make_never_reaches_is_not_judged if {
	never := {"option": "-C", "arg": "x", "source": "argv", "host": "", "resolved": "", "mapped": false, "inside_workspace": false, "exists": false, "is_dir": false, "error": "not reached: make stops at an earlier -C"}
	missing := object.union(inside("-C", "nothere"), {"exists": false, "is_dir": false})
	not "workspace.directory_outside" in rules(fixtures.with_make({"directories": [missing, never]}))
}

test_a_directory_from_MAKEFLAGS_says_where_it_came_from if {
	d := object.union(outside("-C", "/etc", "/etc"), {"source": "MAKEFLAGS", "mapped": false, "error": "outside every mapped path"})
	some x in denials(fixtures.with_make({"directories": [d], "effective_dir_inside_workspace": false}))
	x.reason == "-C /etc (from MAKEFLAGS) is outside your workspace /home/alice"
}

test_makefiles_includes_and_other_files_outside_are_refused if {
	req := fixtures.with_make({
		"makefiles": [outside("-f", "/etc/passwd", "/etc/passwd"), inside("-f", "Makefile")],
		"includes": [outside("-I", "/usr/share", "/usr/share")],
		"other_files": [
			object.union(outside("MAKEFILES", "/tmp/evil.mk", "/tmp/evil.mk"), {"source": "MAKEFILES"}),
			outside("-X", "/x", "/x"),
		],
	})
	{d.reason | some d in denials(req)} == {
		"-f /etc/passwd is outside the workspace /srv/ws/alice/workspace",
		"-I /usr/share is outside the workspace /srv/ws/alice/workspace",
		"MAKEFILES entry /tmp/evil.mk (from MAKEFILES) is outside the workspace /srv/ws/alice/workspace",
		"-X /x is outside the workspace /srv/ws/alice/workspace",
	}
}

test_make_ending_up_outside_by_any_other_way_is_refused if {
	rules(fixtures.with_make({"effective_dir": "/", "effective_dir_inside_workspace": false})) == {"workspace.effective_dir_outside"}
}

test_the_catch_all_stays_quiet_when_a_directory_already_explains_it if {
	rules(fixtures.with_make({
		"directories": [outside("-C", "/", "/")],
		"effective_dir_inside_workspace": false,
	})) == {"workspace.directory_outside"}
}

test_commands_other_than_make_are_judged_by_cwd_only if {
	count(denials(fixtures.with_input({"make": null}))) == 0
}

test_a_cwd_the_caller_cannot_enter_is_refused_with_the_resolvers_words if {
	denials(fixtures.with_input({"cwd": {"error": "permission denied", "inside_workspace": false, "is_dir": false}})) == {{
		"rule": "workspace.cwd_unusable",
		"reason": "cwd /home/alice/project cannot be used: permission denied",
	}}
}

test_a_directory_from_the_workspace_that_leads_out_names_the_host_workspace if {
	d := object.union(outside("-C", "link", "/etc"), {"source": "MAKEFLAGS"})
	some x in denials(fixtures.with_make({"directories": [d], "effective_dir_inside_workspace": false}))
	x.reason == "-C link (from MAKEFLAGS) leaves the workspace /srv/ws/alice/workspace"
}

test_a_path_that_cannot_be_resolved_says_why if {
	f := object.union(outside("-f", "secret/x.mk", ""), {"error": "permission denied"})
	some d in denials(fixtures.with_make({"makefiles": [f]}))
	d.reason == "-f secret/x.mk cannot be resolved: permission denied"
}

test_a_default_makefile_symlinked_out_of_the_workspace_is_refused if {
	m := object.union(outside("-f", "Makefile", "/etc/evil.mk"), {"source": "default"})
	denials(fixtures.with_make({"default_makefile": m})) == {{
		"rule": "workspace.default_makefile_outside",
		"reason": "Makefile in the build directory leads outside the workspace /srv/ws/alice/workspace",
	}}
}

test_no_default_makefile_is_fine if {
	count(denials(fixtures.with_make({"default_makefile": null}))) == 0
}

test_an_unparsed_command_line_is_not_blamed_on_the_directory if {
	count(denials(fixtures.with_make({"parse_error": "bad", "effective_dir": "", "effective_dir_inside_workspace": false}))) == 0
}

test_a_missing_cwd_is_not_also_blamed_on_make if {
	req := fixtures.with_input({
		"cwd": {"error": "no such directory", "is_dir": false},
		"make": {"effective_dir": "", "effective_dir_inside_workspace": false},
	})
	rules(req) == {"workspace.cwd_unusable"}
}
