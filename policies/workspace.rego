# METADATA
# title: workspace confinement
# description: |
#   A build runs in the caller's own workspace and names no file outside it:
#   the working directory, every -C, every -f, every -I, and every other
#   file make is told to read (-o, -W, MAKEFILES), whether it came from
#   the command line, MAKEFLAGS or GNUMAKEFLAGS. Paths are judged by the
#   mapper's resolved real paths (symlinks followed), never by string
#   prefix. Reasons quote paths as the caller spelled them, so a denial
#   tells no more than the caller could see.
package build_service.workspace

import data.build_service.lib

ws := input.workspace.host

deny contains {
	"rule": "workspace.missing",
	"reason": sprintf("the workspace %s does not exist on the host: ask an administrator to create it", [ws]),
} if {
	not input.workspace.exists
}

deny contains {
	"rule": "workspace.unsafe",
	"reason": sprintf("the workspace %s is not safe to build in: %s", [ws, object.get(input.workspace, "unsafe_reason", "ownership or permissions")]),
} if {
	input.workspace.exists
	not input.workspace.safe
}

deny contains {
	"rule": "workspace.cwd_unmapped",
	"reason": sprintf("cwd %s is outside your workspace %s", [input.cwd.container, input.workspace.container]),
} if {
	not input.cwd.mapped
}

deny contains {
	"rule": "workspace.cwd_unusable",
	"reason": sprintf("cwd %s cannot be used: %s", [input.cwd.container, input.cwd.error]),
} if {
	input.cwd.mapped
	input.cwd.error != ""
}

deny contains {
	"rule": "workspace.cwd_outside",
	"reason": sprintf("cwd %s leaves the workspace %s", [input.cwd.container, ws]),
} if {
	input.cwd.mapped
	not input.cwd.error
	not input.cwd.inside_workspace
}

deny contains {
	"rule": "workspace.cwd_not_directory",
	"reason": sprintf("cwd %s is not a directory on the host", [input.cwd.container]),
} if {
	input.cwd.inside_workspace
	not input.cwd.error
	not input.cwd.is_dir
}

# Human names of the path options, for reasons.
option_label := {
	"-C": "-C",
	"-f": "-f",
	"-I": "-I",
	"-o": "-o",
	"-W": "-W",
	"MAKEFILES": "MAKEFILES entry",
}

label(p) := object.get(option_label, p.option, p.option)

# why(p, outside) says what is wrong with a path that is not inside the
# workspace. A path outside every mapping is a container path, so it is
# compared with the workspace as the container sees it; a mapped path the
# resolver could not follow gets the resolver's words; anything else is
# outside.
why(p, outside) := sprintf("is outside your workspace %s", [input.workspace.container]) if {
	not p.mapped
} else := sprintf("cannot be resolved: %s", [p.error]) if {
	p.error != ""
} else := outside

deny contains {
	"rule": "workspace.directory_outside",
	"reason": sprintf("%s %s%s %s", [label(d), d.arg, lib.from(d), why(d, sprintf("leaves the workspace %s", [ws]))]),
} if {
	some d in input.make.directories
	not d.inside_workspace
	object.get(d, "error", "") != not_reached
}

# A -C after one make cannot enter is never reached: make stops at the
# failing one (the canonical argv carries only the last reached -C), so it
# is not judged; make's own error about the first one is what the user
# needs to see.
not_reached := "not reached: make stops at an earlier -C"

deny contains {
	"rule": "workspace.file_outside",
	"reason": sprintf("%s %s%s %s", [label(f), f.arg, lib.from(f), why(f, sprintf("is outside the workspace %s", [ws]))]),
} if {
	some list in [input.make.makefiles, input.make.includes, input.make.other_files]
	some f in list
	not f.inside_workspace
}

# The makefile make picks by itself (GNUmakefile, makefile, Makefile) can
# be a symlink to anywhere.
deny contains {
	"rule": "workspace.default_makefile_outside",
	"reason": sprintf("%s in the build directory %s", [input.make.default_makefile.arg, why(input.make.default_makefile, sprintf("leads outside the workspace %s", [ws]))]),
} if {
	input.make.default_makefile != null
	not input.make.default_makefile.inside_workspace
	input.make.effective_dir_inside_workspace
}

# Catch-all: whatever path led there, make must not end up running outside
# the workspace. Only reported when no more specific reason explains it.
deny contains {
	"rule": "workspace.effective_dir_outside",
	"reason": sprintf("make would run in a directory outside the workspace %s", [ws]),
} if {
	input.make != null
	not input.make.parse_error
	not input.make.effective_dir_inside_workspace
	input.cwd.inside_workspace
	not input.cwd.error
	every d in input.make.directories {
		d.inside_workspace
	}
}
