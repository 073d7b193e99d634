# METADATA
# title: per-build resource limits
# description: |
#   Limits applied to each build's cgroup (0 or "" = none), and whether
#   the build runs with no_new_privs (default: on, so a setuid program in
#   a Makefile cannot rise above the caller). The daemon derives
#   memory_max_bytes from build.limits.memory_max.
package build_service.limits

cfg := object.get(data.config, ["build", "limits"], {})

limits := {
	"pids_max": object.get(cfg, "pids_max", 0),
	"memory_max": object.get(cfg, "memory_max_bytes", 0),
	"cpu_max": object.get(cfg, "cpu_max", ""),
}

default no_new_privs := true

no_new_privs := false if cfg.no_new_privs == false
