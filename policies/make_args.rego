# METADATA
# title: make arguments
# description: |
#   What makes make read code or files without a path option is denied by
#   default: --eval/-E, != assignments (they run a shell command while make
#   reads its command line), and command-line assignments of the variables
#   below. An operator may allow them without touching this file, with a
#   data.json next to an exported copy of the policy:
#     {"build_service": {"settings": {"make_args": {
#        "allow_eval": true, "allow_shell_assignments": true,
#        "allow_variables": ["SHELL"]}}}}
package build_service.make_args

import data.build_service.lib

# Command-line variables that change which files make reads or which
# program runs the recipes.
denied_variables := {
	"MAKEFILES": "it makes make read extra makefiles no path check sees",
	"SHELL": "it changes the program that runs every recipe",
	".SHELLFLAGS": "it changes how every recipe is run",
	"MAKE": "it changes the program that sub-makes run",
}

# Operator settings (data.json); absent means everything above is denied.
default settings := {}

settings := data.build_service.settings.make_args

allowed(name) if settings[name] == true

deny contains {
	"rule": "make_args.parse_error",
	"reason": sprintf("make arguments not understood: %s", [input.make.parse_error]),
} if {
	input.make.parse_error != ""
}

deny contains {
	"rule": "make_args.eval",
	"reason": "--eval/-E is denied: it lets make read code and files that no path check sees",
} if {
	count(input.make.eval) > 0
	not allowed("allow_eval")
}

deny contains {
	"rule": "make_args.shell_assignment",
	"reason": sprintf("assignment %s != ...%s is denied: it runs a shell command while make reads its command line", [a.name, lib.from(a)]),
} if {
	some a in input.make.assignments
	a.op == "!="
	not allowed("allow_shell_assignments")
}

deny contains {
	"rule": "make_args.denied_variable",
	"reason": sprintf("command-line assignment of %s%s is denied: %s", [a.name, lib.from(a), why]),
} if {
	some a in input.make.assignments
	why := denied_variables[a.name]
	not a.name in object.get(settings, "allow_variables", [])
}
