// Package executor runs one approved job: the caller's exact identity
// (never root), a cgroup of its own (or a process group under a child
// subreaper where no writable cgroup v2 exists), resource limits, a clean
// process state (fds 0-2 only, stdin at EOF, umask 022, no ignored or blocked
// signal, exactly the decided environment), no_new_privs through a small exec
// helper, timeout, cancel and signal forwarding, and bounded output pumping.
//
// It must not decide anything: what runs, as whom, with which environment
// and limits comes from the Job, which comes from the policy decision. It
// must not import OPA or read the request.
//
// # Start
//
// Run forks (Go's os/exec) with Setpgid, the job's uid, gid and groups
// (setgroups, setgid, setuid in that order, in the child), the job's working
// directory and, in cgroup mode, CLONE_INTO_CGROUP, and execs the exec
// helper: this binary again, with argv[1] = a fixed marker and an empty
// environment. When the job asks for no_new_privs, the fork happens on a
// locked OS thread that has set it (and that dies with its goroutine), so
// the child has it from its first instruction and no other process of the
// user can ptrace the helper into skipping it. HelperMain, the first call in
// main, recognises the marker and then, as the dropped user, in this order:
// refuses uid/gid/group 0, makes itself non-dumpable, waits until the
// daemon has raised a negative oom_score_adj to 0 (a root-only write to the
// helper's /proc files), reads the job from a sealed memfd (fd 3), joins the
// cgroup v1 limit cgroups through cgroup.procs files the daemon opened (fds
// 6...), sets umask 022, resets ignored signals to default and unblocks all,
// marks every fd above 2 close-on-exec, sets RLIMIT_NPROC when no pids
// controller exists, sets PR_SET_NO_NEW_PRIVS (again) when the job asks,
// and execve()s the job. Failure at any step is written to a close-on-exec
// status pipe (fd 4): the build is then reported with code 127 and
// StartErr, never run without a step. The daemon reads the pipe's EOF as
// "exec'd" and then checks NoNewPrivs in /proc/PID/status. A
// mount/PID-namespace sandbox belongs in the helper, after the cgroup joins
// and before no_new_privs.
//
// The helper binary must be executable by every build user after the
// credential change: New resolves it once (os.Executable, or
// Options.HelperPath) and refuses one that is not world-executable, sits
// in a directory others cannot search, or could be replaced by anyone but
// root (or the daemon's user).
//
// # Containment
//
// cgroup v2 is found from /proc/self/mountinfo and /proc/self/cgroup, never
// assumed at /sys/fs/cgroup. A daemon in a delegated cgroup (systemd
// Delegate=yes) moves itself into <own>/daemon and puts each build in
// <own>/build-<pid>-<seq>-<id>; a daemon in the hierarchy's root (no
// delegation, as on hybrid development hosts) does not move and uses
// <root>/build-service/build-... instead. On completion, timeout and cancel,
// whatever is still in the cgroup gets SIGTERM, then after the grace
// cgroup.kill (or SIGKILL per pid), repeated until empty; then the cgroup is
// removed. The leader's exit status is reported only after that, so the
// result never arrives while something of the build still runs; the wait is
// bounded by the grace.
//
// Without a writable cgroup v2 (or with Options.ForceProcessGroup) the
// daemon becomes a child subreaper and finds a build's processes by its
// process group, its leader's descendants, and orphans reparented to the
// daemon that run as the build's uid, with every descendant of these, from
// /proc. What this fallback cannot catch or tell apart:
//   - orphans of two concurrent builds of the same uid: ending one build also
//     ends the other's orphaned daemons (cgroup v1 pids membership, when a
//     pids limit is set, is exact and is used too);
//   - a process handed to something outside the build's tree (only possible
//     with help from another process of the user, e.g. over a unix socket
//     or ptrace);
//   - a fork racing the scan: the kill loop repeats until two scans in a row
//     are empty, which narrows but does not close this;
//   - in the fallback the daemon must not start other children that run as
//     a build user outside the executor: the sweep and the reaper take them
//     for build orphans. The reaper never waits for pid -1, only for zombie
//     children that are not a running build's leader and run as a uid a
//     build has run as (never root), so os/exec keeps its exit statuses.
//
// # Limits
//
// pids_max, memory_max (with memory.oom.group) and cpu_max go to the build's
// cgroup v2 when the controller is enabled in the base's subtree_control
// (the daemon enables those its parent offers); else to a per-build cgroup
// v1 of that controller, which the helper joins before exec; else pids_max
// becomes RLIMIT_NPROC (per uid: it counts every process of the user,
// unreaped zombies included, so it is imprecise) and the others are logged
// as not enforced. Result.Limits says which applied. Swap is not limited.
//
// # Output
//
// Each stream is read 32 KiB at a time and passed through
// protocol.UTF8Stream to emit, one event per read, the two streams
// serialised. A slow emit makes the build block in write(2): the daemon
// holds at most one buffer per stream. emit must not block forever (give the
// connection a write deadline): Run waits for the pumps to deliver what was
// read before it returns, and never calls emit after.
//
// # Known limits
//
// Between the helper's exec and its PR_SET_DUMPABLE, another process of
// the same user could ptrace it; no_new_privs is already set by then, but
// such a process could make it skip the cgroup v1 joins (limits on hybrid
// hosts; cgroup v2 placement happens at clone and cannot be skipped).
//
// GNU make 4.3 has its own race when a signal reaches it
// and its recipe's shell at once (as Ctrl-C does on a terminal): now and
// then it exits 2 ("wait: No child processes") instead of dying of the
// signal.
package executor
