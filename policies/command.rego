# METADATA
# title: command allowlist
# description: |
#   Only commands named in build.commands may run (the daemon runs the
#   absolute path configured for the name, never a path from the request),
#   and only request types the daemon knows.
package build_service.command

allowed_types := {"build", "doctor"}

allowed_commands := object.keys(data.config.build.commands)

deny contains {
	"rule": "command.not_allowed",
	"reason": sprintf("command %q is not allowed (allowed: %s)", [input.request.command, concat(", ", sort(allowed_commands))]),
} if {
	not input.request.command in allowed_commands
}

deny contains {
	"rule": "command.unknown_type",
	"reason": sprintf("request type %q is not supported (supported: %s)", [input.request.type, concat(", ", sort(allowed_types))]),
} if {
	not input.request.type in allowed_types
}
