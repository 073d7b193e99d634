package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// helperArg is argv[1] of the exec helper. The helper is the daemon's own
// binary; HelperMain recognises this marker and never returns. Running the
// binary with it by hand only ever execs something as oneself.
const helperArg = "__build-service-exec-helper__"

// File descriptors of the exec helper (os/exec ExtraFiles start at 3).
const (
	helperSpecFD   = 3 // memfd with the JSON helperSpec
	helperStatusFD = 4 // close-on-exec pipe: EOF = exec'd, data = why not
	helperGoFD     = 5 // pipe: one byte once the daemon has set up this process
	helperCgroupFD = 6 // first of spec.CgroupProcs cgroup v1 cgroup.procs files
)

// maxSpecBytes bounds what the helper reads from the spec file.
const maxSpecBytes = 8 << 20

// helperSpec is everything the helper needs, written by the daemon into a
// memfd. It travels neither in argv (visible to every user in ps) nor in the
// helper's environment (which is empty, so nothing the caller chose can
// reach the Go runtime or a dynamic loader before no_new_privs is set).
type helperSpec struct {
	Path        string   `json:"path"`
	Dir         string   `json:"dir"`
	Argv        []string `json:"argv"`
	Env         []string `json:"env"`
	NoNewPrivs  bool     `json:"no_new_privs"`
	Umask       int      `json:"umask"`
	CgroupProcs int      `json:"cgroup_procs"`
	RlimitNproc int64    `json:"rlimit_nproc,omitempty"`
}

// HelperMain must be the first call in main() of any binary used as the
// exec helper (build-service itself, and test binaries through TestMain).
// In an ordinary run it returns at once. In the helper it sets up the build
// process and execs the job; it never returns.
func HelperMain() {
	if len(os.Args) != 2 || os.Args[1] != helperArg {
		return
	}
	// no_new_privs and the signal mask belong to the thread; execve must run
	// on the thread that set them.
	runtime.LockOSThread()
	err := helperExec()
	msg := "exec helper: unknown failure"
	if err != nil {
		msg = err.Error()
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	status := os.NewFile(helperStatusFD, "exec-status")
	_, _ = status.Write([]byte(msg))
	os.Exit(127)
}

// helperExec runs in the build's process, already in its cgroup v2, process
// group and working directory, with the caller's uid, gid and groups (set
// by the daemon's fork before this binary was exec'd).
//
// SECURITY: the order below matters; keep it, and keep this function small.
// This is also where a per-build mount and PID namespace sandbox will go
// (before no_new_privs, after the cgroup joins).
func helperExec() error {
	// 1. Never run a build as root, whatever the daemon got wrong.
	if unix.Getuid() == 0 || unix.Geteuid() == 0 || unix.Getgid() == 0 || unix.Getegid() == 0 {
		return errors.New("exec helper: refusing to run a build as root")
	}
	groups, err := unix.Getgroups()
	if err != nil {
		return os.NewSyscallError("getgroups", err)
	}
	for _, g := range groups {
		if g == 0 {
			return errors.New("exec helper: refusing to run a build in group 0")
		}
	}

	// 2. Not dumpable until the exec: no other process of the caller's
	// (another build) can ptrace this one from here on and skip a step.
	// (no_new_privs itself is already set: the daemon forks from a thread
	// that has it.)
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_DUMPABLE)", err)
	}

	// 3. Wait for the daemon: it sets what only root may set on this
	// process (a lowered OOM score raised back) before the job may run.
	goFile := os.NewFile(helperGoFD, "exec-go")
	var b [1]byte
	if n, _ := goFile.Read(b[:]); n != 1 {
		return errors.New("exec helper: the daemon did not release the build")
	}
	goFile.Close()

	// 4. The spec, from the daemon only.
	spec, err := readSpec()
	if err != nil {
		return err
	}

	// 4b. The working directory is the one the policy judged. The fork
	// entered it by name, and anyone who can write the workspace could have
	// swapped a component for a symlink since the mapper resolved it; the
	// kernel's getcwd names the directory this process really holds.
	if cwd, err := unix.Getwd(); err != nil || cwd != spec.Dir {
		if err != nil {
			return fmt.Errorf("the working directory %s vanished before the build started: %w", spec.Dir, err)
		}
		return fmt.Errorf("the working directory %s changed between the check and the start (now %s): refusing to run", spec.Dir, cwd)
	}

	// 5. Join the cgroup v1 limit cgroups. The files were opened by the
	// daemon; the kernel checks the opener's credentials.
	for i := 0; i < spec.CgroupProcs; i++ {
		f := os.NewFile(uintptr(helperCgroupFD+i), "cgroup.procs")
		if _, err := f.Write([]byte("0")); err != nil {
			return fmt.Errorf("exec helper: join cgroup: %w", err)
		}
		f.Close()
	}

	// 6. A clean process state: umask, no signal ignored or blocked.
	unix.Umask(spec.Umask)
	if err := resetSignals(); err != nil {
		return err
	}

	// 7. Only 0, 1 and 2 survive the exec (the daemon may have inherited
	// fds without close-on-exec, e.g. systemd's LISTEN_FDS). The status pipe
	// is among them: its EOF tells the daemon the exec happened.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return os.NewSyscallError("close_range", err)
	}

	// 8. The per-uid process limit, the fallback when no pids controller
	// exists. Last before the exec: the Go runtime may still need a thread.
	if spec.RlimitNproc > 0 {
		lim := unix.Rlimit{Cur: uint64(spec.RlimitNproc), Max: uint64(spec.RlimitNproc)}
		if err := unix.Setrlimit(unix.RLIMIT_NPROC, &lim); err != nil {
			return os.NewSyscallError("setrlimit(RLIMIT_NPROC)", err)
		}
	}

	// 9. no_new_privs: a setuid or file-capability binary in the build runs
	// with the caller's privileges, never more. Inherited by every child
	// and irreversible.
	if spec.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
		}
	}

	// 10. The job itself.
	err = syscall.Exec(spec.Path, spec.Argv, spec.Env)
	return fmt.Errorf("exec %s: %w", spec.Path, err)
}

func readSpec() (*helperSpec, error) {
	f := os.NewFile(helperSpecFD, "exec-spec")
	if f == nil {
		return nil, errors.New("exec helper: no spec file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSpecBytes+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("exec helper: read spec: %w", err)
	}
	if len(data) > maxSpecBytes {
		return nil, errors.New("exec helper: spec too large")
	}
	var spec helperSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("exec helper: decode spec: %w", err)
	}
	if !strings.HasPrefix(spec.Path, "/") || len(spec.Argv) == 0 {
		return nil, errors.New("exec helper: spec has no absolute path or no argv")
	}
	return &spec, nil
}

// raiseOOMScoreAdj raises the oom_score_adj of a process to at least min.
// The daemon calls it for the helper as root: the helper itself could raise
// its score only while dumpable, and it is not.
func raiseOOMScoreAdj(pid, min int) error {
	p := "/proc/" + strconv.Itoa(pid) + "/oom_score_adj"
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("parse %s: %w", p, err)
	}
	if cur >= min {
		return nil
	}
	return os.WriteFile(p, []byte(strconv.Itoa(min)), 0)
}

// kernelSigaction is struct sigaction as rt_sigaction(2) takes it. Only the
// handler is read, and only an all-zero value (SIG_DFL) is written, so the
// field layout past the handler does not matter across architectures.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const sigIgn = 1

// resetSignals puts every ignored signal back to its default action and
// unblocks all signals on this thread. execve keeps both an ignored
// disposition and the mask, and a daemon started with, say, SIGHUP ignored
// (nohup) would otherwise pass that to every build. Signals the Go runtime
// handles are reset by execve itself.
func resetSignals() error {
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		var old kernelSigaction
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
			continue // not a valid signal number here
		}
		if old.handler != sigIgn {
			continue
		}
		var dfl kernelSigaction
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0); e != 0 {
			return os.NewSyscallError("rt_sigaction", e)
		}
	}
	var empty uint64
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&empty)), 0, 8, 0, 0); e != 0 {
		return os.NewSyscallError("rt_sigprocmask", e)
	}
	return nil
}
