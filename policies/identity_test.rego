package build_service.identity_test

import data.build_service.fixtures
import data.build_service.identity

denials(patch) := d if {
	d := identity.deny with input as fixtures.with_input(patch) with data.config as fixtures.config
}

test_the_account_owner_is_not_denied if {
	count(denials({})) == 0
}

test_root_callers_are_refused if {
	denials({"peer": {"uid": 0}}) == {{
		"rule": "identity.root_caller",
		"reason": "callers running as root are refused: run make as your own user",
	}}
}

test_an_unknown_uid_is_refused if {
	denials({"peer": {"uid": 12345}, "account": {"known": false, "name": "", "home": ""}}) == {{
		"rule": "identity.unknown_account",
		"reason": "uid 12345 has no account on this host",
	}}
}

test_the_overflow_uid_of_an_unmapped_user_namespace_is_refused if {
	some d in denials({"peer": {"uid": 65534}})
	d.rule == "identity.unmapped_uid"
	contains(d.reason, "does not map your uid")
}

test_a_gid_the_account_does_not_have_is_refused if {
	denials({"peer": {"gid": 4242}, "identity": {"gid": 4242, "gid_allowed": false, "gid_denied": false}}) == {{
		"rule": "identity.foreign_gid",
		"reason": "gid 4242 is not a group of account alice (primary gid 1000): run with your own group",
	}}
}

test_a_denied_group_of_the_account_as_the_gid_is_refused if {
	denials({"peer": {"gid": 998}, "identity": {"gid": 998, "gid_allowed": false, "gid_denied": true}}) == {{
		"rule": "identity.denied_gid",
		"reason": "gid 998 is in build.identity.deny_groups (builds never run with it): run with your own group (primary gid 1000)",
	}}
}
