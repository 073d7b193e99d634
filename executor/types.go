package executor

import "time"

// Credential is the identity a job runs with. Build it only from an
// engine.Identity that passed policy: there is no zero-value default.
type Credential struct {
	UID    uint32
	GID    uint32
	Groups []uint32
}

// Limits are per-build resource limits; zero means none.
type Limits struct {
	PidsMax   int64
	MemoryMax int64 // bytes
	CPUMax    string
}

// Job is one approved build.
type Job struct {
	ID         string   // decision id, for logs and the cgroup name
	Path       string   // absolute path of the allowlisted binary
	Name       string   // argv[0], e.g. "make"
	Args       []string // canonical arguments, without argv[0]
	Dir        string   // working directory (host, resolved)
	Env        []string // complete environment, "NAME=value"
	Cred       Credential
	Timeout    time.Duration
	KillGrace  time.Duration
	Limits     Limits
	NoNewPrivs bool
}

// Result is how a job ended.
type Result struct {
	Code      int    // exit code as build-cli should exit with it (0-123, 124, 127, 128+N)
	ExitCode  int    // the process's own exit status, -1 when killed by a signal
	Signal    string // e.g. "SIGKILL" when killed by a signal
	TimedOut  bool
	Cancelled bool
	StartErr  error // non-nil when the command could not be started (Code 127)
	Duration  time.Duration
	// Limits says how each requested limit was applied ("pids_max=20 via
	// cgroup1 /sys/fs/cgroup/pids/...", "... NOT ENFORCED ..."), for the log.
	Limits []string
}
