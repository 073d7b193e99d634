# METADATA
# title: build-service decision
# description: |
#   Entry point of the build-service policy. The daemon evaluates
#   data.build_service.decision once per request. Each concern lives in its
#   own package (identity, command, workspace, make_args, timeout,
#   environment, load, limits) and contributes denials of the form
#   {"rule": "<package>.<name>", "reason": "<message a user can act on>"}.
#   The request is allowed only when no package denies it.
#
#   The daemon's configuration is data.config (the TOML keys, snake_case);
#   the input document is described by schemas/input.json.
# scope: subpackages
# schemas:
#   - input: schema.input
package build_service

import data.build_service.command
import data.build_service.environment
import data.build_service.identity
import data.build_service.limits
import data.build_service.load
import data.build_service.make_args
import data.build_service.timeout
import data.build_service.workspace

# Concerns in the order their reasons are reported: who, what, where, how.
concerns := [
	identity.deny,
	command.deny,
	workspace.deny,
	make_args.deny,
	timeout.deny,
	environment.deny,
	load.deny,
]

denials := [d | some c in concerns; some d in c]

default allow := false

allow if count(denials) == 0

decision := {
	"allow": allow,
	"reasons": [d.reason | some d in denials],
	"denials": denials,
	"timeout_sec": timeout.timeout_sec,
	"env": environment.env,
	"limits": limits.limits,
	"no_new_privs": limits.no_new_privs,
}
