# METADATA
# title: timeout
# description: |
#   No timeout asked: build.timeouts.default_sec. 1 to max_sec: as asked.
#   Above max_sec: capped to max_sec (the client is told). Zero or
#   negative: refused.
package build_service.timeout

default_sec := data.config.build.timeouts.default_sec

max_sec := data.config.build.timeouts.max_sec

requested := input.timeout.requested_sec

deny contains {
	"rule": "timeout.not_positive",
	"reason": sprintf("timeout of %d seconds is refused: ask for 1 to %d seconds, or leave it out for the default (%d)", [requested, max_sec, default_sec]),
} if {
	requested != null
	requested < 1
}

timeout_sec := min([requested, max_sec]) if {
	requested != null
	requested >= 1
} else := default_sec
