# METADATA
# title: build environment
# description: |
#   The build's environment is built here, never copied from the client:
#   the request's variables named in build.environment.allow, then HOME,
#   USER and LOGNAME from the host account and PATH from the config (these
#   four always win over anything the request sent). MAKEFLAGS,
#   GNUMAKEFLAGS and MAKEFILES are confined through the mapper's facts
#   (workspace and make_args check what they make make read), so they may
#   only reach a command whose arguments the mapper parsed (make).
package build_service.environment

service_names := {"HOME", "USER", "LOGNAME", "PATH"}

make_reading := {"MAKEFLAGS", "GNUMAKEFLAGS", "MAKEFILES"}

# Variables that make the shell or the dynamic loader read code from a
# path no check sees. Denied even when an operator allowlists them, like
# --eval; delete this rule in an operator policy to allow them.
code_loading := {
	"BASH_ENV": "every bash the build starts reads it",
	"ENV": "every interactive sh reads it",
	"LD_PRELOAD": "every program the build starts loads it",
	"LD_AUDIT": "every program the build starts loads it",
}

allowed_names := {n | some n in data.config.build.environment.allow} - service_names

passed := {name: value |
	some name, value in input.env
	name in allowed_names
}

service := {
	"HOME": input.account.home,
	"USER": input.account.name,
	"LOGNAME": input.account.name,
	"PATH": data.config.build.environment.path,
} if {
	input.account.known
} else := {"PATH": data.config.build.environment.path}

env := object.union(passed, service)

deny contains {
	"rule": "environment.make_variable_unparsed",
	"reason": sprintf("%s cannot be passed to %q: only make's own arguments are parsed and confined", [name, input.request.command]),
} if {
	input.make == null
	some name in make_reading
	passed[name]
}

deny contains {
	"rule": "environment.code_loading_variable",
	"reason": sprintf("%s cannot be passed to the build: %s, and no path check sees what it names", [name, why]),
} if {
	some name, why in code_loading
	passed[name]
}
