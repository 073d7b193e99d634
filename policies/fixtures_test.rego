# METADATA
# title: shared test fixtures
# description: |
#   A request that every rule allows (alice runs make -j4 all in her
#   workspace) and the config it is judged against. Tests change one thing
#   with object.union and check the one denial it causes.
package build_service.fixtures

config := {
	"build": {
		"workspace_root": "/srv/ws",
		"commands": {"make": "/usr/bin/make"},
		"timeouts": {"default_sec": 600, "max_sec": 3600, "kill_grace_sec": 5},
		"environment": {"allow": ["CFLAGS", "LDFLAGS", "MAKEFLAGS", "HOME"], "path": "/usr/local/bin:/usr/bin:/bin"},
		"identity": {"deny_groups": ["root", "sudo", "docker"]},
		"limits": {
			"pids_max": 512,
			"memory_max": "4G",
			"memory_max_bytes": 4294967296,
			"cpu_max": "",
			"no_new_privs": null,
			"max_builds_per_user": 2,
			"max_builds_total": 8,
		},
	},
}

ws := "/srv/ws/alice/workspace"

path_fact(option, arg, resolved, inside) := {
	"option": option,
	"arg": arg,
	"source": "argv",
	"host": resolved,
	"resolved": resolved,
	"inside_workspace": inside,
	"exists": true,
	"mapped": true,
	"is_dir": option == "-C",
}

make_facts := {
	"argv": ["--jobs=4", "--", "all"],
	"directories": [],
	"makefiles": [],
	"includes": [],
	"other_files": [],
	"targets": ["all"],
	"assignments": [],
	"eval": [],
	"options": ["--jobs"],
	"effective_dir": concat("", [ws, "/project"]),
	"effective_dir_inside_workspace": true,
	"effective_dir_is_dir": true,
	"default_makefile": path_fact("-f", "Makefile", concat("", [ws, "/project/Makefile"]), true),
}

input_ok := {
	"schema_version": "1",
	"request": {
		"schema_version": "1",
		"type": "build",
		"request_id": "r-1",
		"command": "make",
		"args": ["-j4", "all"],
		"cwd": "/home/alice/project",
		"timeout_sec": null,
		"env": ["CFLAGS"],
	},
	"peer": {"uid": 1000, "gid": 1000, "pid": 4242, "groups": [1000, 1001]},
	"account": {
		"known": true,
		"name": "alice",
		"home": "/home/alice",
		"uid": 1000,
		"gid": 1000,
		"groups": [1000, 1001],
		"group_names": {"1000": "alice", "1001": "team"},
	},
	"identity": {"uid": 1000, "gid": 1000, "groups": [1000, 1001], "gid_allowed": true, "gid_denied": false, "dropped_groups": []},
	"workspace": {"container": "/home/alice", "host": ws, "resolved": ws, "exists": true, "safe": true},
	"cwd": {
		"container": "/home/alice/project",
		"host": concat("", [ws, "/project"]),
		"resolved": concat("", [ws, "/project"]),
		"mapped": true,
		"inside_workspace": true,
		"is_dir": true,
	},
	"make": make_facts,
	"timeout": {"requested_sec": null},
	"env": {"CFLAGS": "-O2"},
	"load": {"user": 1, "total": 1},
}

# with_input returns the good input with patch merged in (objects merge
# recursively, anything else replaces).
with_input(patch) := object.union(input_ok, patch)

with_make(patch) := with_input({"make": object.union(make_facts, patch)})
