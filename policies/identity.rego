# METADATA
# title: caller identity
# description: |
#   Who may build: never root, only callers with an account on this host,
#   and only with a group the account really has. The exact credential a
#   build runs with (input.identity) is computed by the daemon; this
#   package only decides whether it is acceptable.
package build_service.identity

# The kernel reports this uid for a caller whose user namespace does not
# map its uid to the host.
overflow_uid := 65534

deny contains {
	"rule": "identity.root_caller",
	"reason": "callers running as root are refused: run make as your own user",
} if {
	input.peer.uid == 0
}

deny contains {
	"rule": "identity.unmapped_uid",
	"reason": sprintf("uid %d is the kernel's overflow uid: the container's user namespace does not map your uid to the host", [overflow_uid]),
} if {
	input.peer.uid == overflow_uid
}

deny contains {
	"rule": "identity.unknown_account",
	"reason": sprintf("uid %d has no account on this host", [input.peer.uid]),
} if {
	not input.account.known
	input.peer.uid != 0
	input.peer.uid != overflow_uid
}

deny contains {
	"rule": "identity.foreign_gid",
	"reason": sprintf("gid %d is not a group of account %s (primary gid %d): run with your own group", [input.peer.gid, input.account.name, input.account.gid]),
} if {
	input.account.known
	not input.identity.gid_allowed
	not input.identity.gid_denied
}

deny contains {
	"rule": "identity.denied_gid",
	"reason": sprintf("gid %d is in build.identity.deny_groups (builds never run with it): run with your own group (primary gid %d)", [input.peer.gid, input.account.gid]),
} if {
	input.account.known
	input.identity.gid_denied
}
