# METADATA
# title: shared helpers
# description: Wording shared by the concerns' reasons.
package build_service.lib

# Where a path or an assignment came from, in words, for reasons.
source_label := {
	"argv:MAKEFLAGS": "a MAKEFLAGS= argument",
	"argv:GNUMAKEFLAGS": "a GNUMAKEFLAGS= argument",
	"MAKEFLAGS:MAKEFLAGS": "MAKEFLAGS inside MAKEFLAGS",
}

# from(x) is "" for something on the command line itself, else
# " (from <where>)".
from(x) := "" if x.source == "argv"

else := sprintf(" (from %s)", [object.get(source_label, x.source, x.source)])
