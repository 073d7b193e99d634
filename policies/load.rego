# METADATA
# title: concurrency caps
# description: |
#   input.load counts the builds running now, this request's slot
#   included. A cap of 0 (or none) means unlimited.
package build_service.load

max_per_user := object.get(data.config, ["build", "limits", "max_builds_per_user"], 0)

max_total := object.get(data.config, ["build", "limits", "max_builds_total"], 0)

deny contains {
	"rule": "load.user_cap",
	"reason": sprintf("you already have %d builds running (build.limits.max_builds_per_user = %d): wait for one to finish", [input.load.user - 1, max_per_user]),
} if {
	max_per_user > 0
	input.load.user > max_per_user
}

deny contains {
	"rule": "load.total_cap",
	"reason": sprintf("the host is running %d builds (build.limits.max_builds_total = %d): try again shortly", [input.load.total - 1, max_total]),
} if {
	max_total > 0
	input.load.total > max_total
}
