package build_service.lib_test

import data.build_service.lib

test_the_command_line_needs_no_source if {
	lib.from({"source": "argv"}) == ""
}

test_the_environment_is_named if {
	lib.from({"source": "GNUMAKEFLAGS"}) == " (from GNUMAKEFLAGS)"
}

test_a_MAKEFLAGS_argument_is_described if {
	lib.from({"source": "argv:MAKEFLAGS"}) == " (from a MAKEFLAGS= argument)"
}
