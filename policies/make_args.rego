# METADATA
# title: make arguments
# description: |
#   What makes make read code or files without a path option is denied by
#   default: --eval/-E, != assignments (they run a shell command while make
#   reads its command line), command-line assignments of the variables
#   below, and $(eval/shell/file/guile/call ...) in an assignment's or a
#   passed environment variable's value. An operator may allow them without touching this file, with a
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

# Make functions that run make code, a command or read a file, and call,
# which invokes any of them by a computed name ($(call $(F),...)). In a
# command-line assignment, or in an environment variable (make imports
# each as a variable), they do what --eval and != do wherever make expands
# the value: $(eval SHELL:=...) or $(eval include ...) without a check.
code_function := `\$[({](eval|shell|file|guile|call)[ \t]`

# The settings switch that lifts the denial of each function.
function_setting := {
	"eval": "allow_eval", "file": "allow_eval", "guile": "allow_eval", "call": "allow_eval",
	"shell": "allow_shell_assignments",
}

calls(value) := regex.find_all_string_submatch_n(code_function, value, 1)[0][1]

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

deny contains {
	"rule": "make_args.function_in_value",
	"reason": sprintf("assignment %s%s calls $(%s ...): it runs make code, a command or a file no path check sees; give it a literal value", [a.name, lib.from(a), fn]),
} if {
	some a in input.make.assignments
	fn := calls(a.value)
	not allowed(function_setting[fn])
}

deny contains {
	"rule": "make_args.function_in_env",
	"reason": sprintf("%s calls $(%s ...): make imports it as a variable, so it runs make code, a command or a file no path check sees; give it a literal value", [name, fn]),
} if {
	input.make != null
	some name, value in input.env
	name in data.config.build.environment.allow
	fn := calls(value)
	not allowed(function_setting[fn])
}
