package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/build-service/build-service/protocol"
)

// DefaultKillGrace is the time between SIGTERM and SIGKILL when the job
// does not say (build.timeouts.kill_grace_sec defaults to the same).
const DefaultKillGrace = 5 * time.Second

// buildUmask is the umask every build starts with.
const buildUmask = 0o022

// pipeIdle is how long Run keeps reading a stream after the build's
// processes are gone when nothing arrives on it: a process outside the
// build that got hold of the pipe (fd passing) cannot hold the result back.
const pipeIdle = 2 * time.Second

// helperStartTimeout bounds the exec helper's set-up before the job's exec.
const helperStartTimeout = 30 * time.Second

// Errors a job can be refused with before anything starts (Result.StartErr
// wraps them; Code 127).
var (
	ErrRootCredential = errors.New("refusing to run a build as root (uid 0, gid 0 or group 0 in the credential)")
	ErrBadJob         = errors.New("invalid job")
	ErrHelper         = errors.New("exec helper failed")
	ErrNoNewPrivs     = errors.New("no_new_privs is not in effect in the build")
)

// Options configure an Executor.
type Options struct {
	Logger zerolog.Logger
	// HelperPath is the exec helper binary: a binary whose main() calls
	// HelperMain first. "" = this process's own executable, resolved now,
	// since /proc/self/exe may not be usable after the credential change.
	// The dropped user must be able to execute it: the file and every
	// directory up to / must be world-executable, owned by root (or the
	// daemon's user) and writable by no one else.
	HelperPath string
	// ForceProcessGroup uses the fallback containment (process group plus
	// the daemon as child subreaper) even where a writable cgroup v2
	// exists. cgroup v1 limit controllers are still used.
	ForceProcessGroup bool
}

// Executor runs jobs. It is safe for concurrent use.
type Executor struct {
	log    zerolog.Logger
	helper string
	cg     *cgroupSetup
	v2     bool // containment by cgroup v2
	mode   string
	root   bool
}

// buildSeq numbers builds in this process, for unique cgroup names.
var buildSeq atomic.Uint64

var (
	cgroupOnce  sync.Once
	cgroupFound *cgroupSetup
)

// New resolves and checks the exec helper and finds out how builds will be
// contained. It logs the mode once.
func New(opts Options) (*Executor, error) {
	x := &Executor{log: opts.Logger, root: os.Geteuid() == 0}
	helper := opts.HelperPath
	if helper == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("executor: find the exec helper: %w", err)
		}
		helper = exe
	}
	helper, err := filepath.EvalSymlinks(helper)
	if err != nil {
		return nil, fmt.Errorf("executor: resolve the exec helper: %w", err)
	}
	if !filepath.IsAbs(helper) {
		if helper, err = filepath.Abs(helper); err != nil {
			return nil, fmt.Errorf("executor: resolve the exec helper: %w", err)
		}
	}
	if err := checkHelper(helper); err != nil {
		return nil, fmt.Errorf("executor: exec helper %s: %w", helper, err)
	}
	x.helper = helper

	if x.root {
		cgroupOnce.Do(func() { cgroupFound = discoverCgroups() })
		x.cg = cgroupFound
		if n := x.cg.removeStale(); n > 0 {
			x.log.Warn().Int("cgroups", n).Msg("executor: ended builds left running by a daemon that died")
		}
	} else {
		x.cg = &cgroupSetup{v2Why: "not running as root", v2Ctl: map[string]bool{}, v1Base: map[string]string{}, v1Why: map[string]string{}}
	}
	x.v2 = x.cg.v2Base != "" && !opts.ForceProcessGroup
	var limits []string
	for _, c := range v1Controllers {
		switch {
		case x.v2 && x.cg.v2Ctl[c]:
			limits = append(limits, c+" via cgroup2")
		case x.cg.v1Base[c] != "":
			limits = append(limits, c+" via cgroup1 "+x.cg.v1Base[c])
		case c == "pids":
			limits = append(limits, "pids via RLIMIT_NPROC (per uid)")
		default:
			limits = append(limits, c+" not enforceable")
		}
	}
	if x.v2 {
		x.mode = "cgroup2 " + x.cg.v2Base
		if !x.cg.hasKill {
			x.mode += " (no cgroup.kill: SIGKILL per pid)"
		}
		x.mode += "; limits: " + strings.Join(limits, ", ")
		x.log.Info().Str("mode", x.mode).Str("helper", x.helper).Msg("executor: builds contained in cgroups")
		return x, nil
	}
	why := x.cg.v2Why
	if opts.ForceProcessGroup {
		why = "forced by configuration"
	}
	if err := startSubreaper(); err != nil {
		return nil, fmt.Errorf("executor: %w", err)
	}
	x.mode = "process-group + child subreaper (no writable cgroup v2: " + why + "); limits: " + strings.Join(limits, ", ")
	x.log.Warn().Str("mode", x.mode).Str("helper", x.helper).
		Msg("executor: no cgroup containment; a build's processes are found by process group and a /proc sweep of its descendants and of orphans reparented to the daemon")
	return x, nil
}

// Mode says how builds are contained and limited, for the start log line.
func (x *Executor) Mode() string { return x.mode }

// checkHelper checks, like sshd's StrictModes, that the helper cannot be
// replaced by anyone but root (or the daemon's own user) and that a
// dropped user can execute it.
func checkHelper(path string) error {
	self := uint32(os.Geteuid())
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if st.Mode().Perm()&0o001 == 0 {
		return errors.New("not executable by other users (the build's user must exec it)")
	}
	for p := path; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Uid != 0 && sys.Uid != self {
			return fmt.Errorf("%s is owned by uid %d (want root or the daemon's user)", p, sys.Uid)
		}
		perm := st.Mode().Perm()
		sticky := st.Mode()&os.ModeSticky != 0
		if perm&0o022 != 0 && !(st.IsDir() && sticky && sys.Uid == 0) {
			return fmt.Errorf("%s is writable by group or others", p)
		}
		if st.IsDir() && perm&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users (the build's user must reach the helper)", p)
		}
		if p == "/" {
			return nil
		}
	}
}

// checkJob refuses what must never reach exec.
func (x *Executor) checkJob(job *Job) error {
	c := job.Cred
	if c.UID == 0 || c.GID == 0 {
		return ErrRootCredential
	}
	for _, g := range c.Groups {
		if g == 0 {
			return ErrRootCredential
		}
	}
	if !x.root && (int(c.UID) != os.Geteuid() || int(c.GID) != os.Getegid()) {
		return fmt.Errorf("%w: a daemon that is not root can run builds only as itself (uid %d gid %d), not uid %d gid %d",
			ErrBadJob, os.Geteuid(), os.Getegid(), c.UID, c.GID)
	}
	if !filepath.IsAbs(job.Path) {
		return fmt.Errorf("%w: command path %q is not absolute", ErrBadJob, job.Path)
	}
	if job.Name == "" {
		return fmt.Errorf("%w: no argv[0]", ErrBadJob)
	}
	if !filepath.IsAbs(job.Dir) {
		return fmt.Errorf("%w: working directory %q is not absolute", ErrBadJob, job.Dir)
	}
	if job.Timeout <= 0 {
		return fmt.Errorf("%w: no timeout", ErrBadJob)
	}
	for _, e := range job.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			return fmt.Errorf("%w: environment entry %q is not NAME=value", ErrBadJob, truncate(e, 40))
		}
	}
	for _, a := range append([]string{job.Path, job.Name, job.Dir}, job.Args...) {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%w: NUL byte in path or argument", ErrBadJob)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// cgroupName is a build cgroup's directory name: unique per host (daemon
// pid and sequence), with a readable part of the job id for operators.
func (x *Executor) cgroupName(id string) string {
	var b strings.Builder
	for _, r := range id {
		if b.Len() >= 40 {
			break
		}
		if r < 0x80 && (r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	name := fmt.Sprintf("build-%d-%d", os.Getpid(), buildSeq.Add(1))
	if b.Len() > 0 {
		name += "-" + strings.TrimLeft(b.String(), ".")
	}
	return name
}

// run is the state of one Run.
type run struct {
	x        *Executor
	job      Job
	cg       *buildCgroups
	pgid     int
	reaped   atomic.Bool // the leader has been waited for
	killAt   time.Time   // when TERM was sent plus the grace; zero before
	termOnce sync.Once
}

// members lists the build's live processes.
func (r *run) members() []int {
	pids := r.cg.pids()
	if r.x.v2 {
		return pids
	}
	seen := map[int]bool{}
	for _, p := range pids {
		seen[p] = true
	}
	for _, p := range sweep(r.pgid, r.pgid, int(r.job.Cred.UID), !r.reaped.Load()) {
		if !seen[p] {
			pids = append(pids, p)
		}
	}
	return pids
}

// empty reports whether nothing of the build is alive. A cgroup's list is
// exact; the fallback's /proc sweep is confirmed by a second one, since a
// process being reparented can slip through one.
func (r *run) empty() bool {
	if len(r.members()) > 0 {
		return false
	}
	if r.x.v2 {
		return true
	}
	time.Sleep(10 * time.Millisecond)
	return len(r.members()) == 0
}

// signalAll sends sig to every process of the build.
func (r *run) signalAll(sig unix.Signal) {
	if !r.reaped.Load() || !r.x.v2 {
		// The process group id stays reserved while any member lives, so
		// this cannot hit a stranger while the group has members.
		_ = unix.Kill(-r.pgid, sig)
	}
	for _, pid := range r.members() {
		_ = unix.Kill(pid, sig)
	}
}

// killAll kills every process of the build, the group leader included even
// if it is alive (make waits for children that ignore SIGTERM).
func (r *run) killAll() {
	if r.x.v2 {
		r.cg.kill()
		if !r.reaped.Load() {
			_ = unix.Kill(-r.pgid, unix.SIGKILL)
		}
		return
	}
	r.signalAll(unix.SIGKILL)
}

// terminate sends SIGTERM to everything and starts the grace period. Safe
// to call from os/exec's Cancel goroutine.
func (r *run) terminate() {
	r.termOnce.Do(func() {
		r.killAt = time.Now().Add(r.job.KillGrace)
		r.signalAll(unix.SIGTERM)
	})
}

// Run runs job and returns how it ended. Output goes to emit as it comes,
// one event per read, stdout and stderr never concurrently; emit is not
// called after Run returns. When emit fails or ctx is done (the client went
// away), the build is cancelled: SIGTERM at once, SIGKILL after
// job.KillGrace. Signals from the signals channel (INT, TERM, HUP, QUIT) go
// to the build's process group while its leader runs. When Run returns,
// nothing of the build is left running (or an error is logged).
func (x *Executor) Run(ctx context.Context, job Job, emit func(protocol.Event) error, signals <-chan syscall.Signal) (res Result) {
	// The build's Pdeathsig fires when the OS thread that forked it exits,
	// and other packages end threads on purpose (the mapper lets a thread
	// whose file-system identity it changed die). Holding this goroutine's
	// thread for the whole run keeps the forking thread alive and out of
	// anyone else's hands until the build is over.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	log := x.log.With().Str("build", job.ID).Logger()
	startFailed := func(err error) Result {
		log.Warn().Err(err).Msg("build could not be started")
		return Result{Code: protocol.ExitCannotStart, ExitCode: -1, StartErr: err}
	}
	if emit == nil {
		emit = func(protocol.Event) error { return nil }
	}
	if job.KillGrace <= 0 {
		job.KillGrace = DefaultKillGrace
	}
	if err := x.checkJob(&job); err != nil {
		return startFailed(err)
	}
	if err := ctx.Err(); err != nil {
		// The client left before anything started: start nothing.
		return Result{Code: protocol.ExitCannotStart, ExitCode: -1, Cancelled: true, StartErr: fmt.Errorf("not started: %w", err)}
	}

	cgs := &cgroupSetup{v1Base: x.cg.v1Base, v2Ctl: x.cg.v2Ctl, hasKill: x.cg.hasKill}
	if x.v2 {
		cgs.v2Base = x.cg.v2Base
	} else {
		cgs.v2Ctl = map[string]bool{}
	}
	cg, err := cgs.newBuildCgroups(x.cgroupName(job.ID), job.Limits)
	if err != nil {
		return startFailed(fmt.Errorf("prepare cgroups: %w", err))
	}
	r := &run{x: x, job: job, cg: cg}
	res.Limits = cg.applied
	defer func() {
		for _, err := range cg.remove() {
			log.Error().Err(err).Msg("build cgroup not removed")
		}
	}()
	for _, a := range cg.applied {
		if strings.Contains(a, "NOT ENFORCED") {
			log.Warn().Str("limit", a).Msg("build limit")
		} else {
			log.Debug().Str("limit", a).Msg("build limit")
		}
	}

	// runCtx is this build's own: cancelled on timeout, client cancel and
	// emit failure alike, so that os/exec runs Cancel (SIGTERM to all) and,
	// after WaitDelay, kills the leader.
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	cmd, files, err := x.command(runCtx, job, cg)
	if err != nil {
		return startFailed(err)
	}
	defer files.closeAll()
	cmd.Cancel = func() error { r.terminate(); return nil }
	cmd.WaitDelay = job.KillGrace

	hold := make(chan struct{})
	defer close(hold)
	reg.mu.Lock()
	err = startCmd(cmd, job.NoNewPrivs, hold)
	if err == nil {
		reg.leaders[cmd.Process.Pid] = true
		reg.uids[int(job.Cred.UID)] = true
	}
	reg.mu.Unlock()
	files.closeChild()
	cg.closeChildFiles()
	if err != nil {
		// The child's chdir fails inside fork/exec and Go reports it under
		// the helper's path; name the directory, which is what went away.
		if fi, serr := os.Stat(job.Dir); serr != nil {
			return startFailed(fmt.Errorf("working directory %s: %w", job.Dir, unwrapPathErr(serr)))
		} else if !fi.IsDir() {
			return startFailed(fmt.Errorf("working directory %s: %w", job.Dir, syscall.ENOTDIR))
		}
		return startFailed(fmt.Errorf("start exec helper: %w", err))
	}
	r.pgid = cmd.Process.Pid
	unregister := func() {
		reg.mu.Lock()
		delete(reg.leaders, r.pgid)
		reg.mu.Unlock()
	}

	// The pumps start before the helper's status is read: the helper writes
	// nothing to stdout or stderr, but the job may, and it must not block.
	out := newOutput(emit)
	pumps := []*pump{out.start(protocol.EventStdout, files.stdoutR), out.start(protocol.EventStderr, files.stderrR)}
	files.stdoutR, files.stderrR = nil, nil

	waitCh := make(chan error, 1)
	go func() { waitCh <- cmd.Wait() }()

	startErr := x.release(r.pgid, files.goW)
	files.goW = nil
	if startErr == nil {
		startErr = readHelperStatus(files.statusR)
	}
	if startErr == nil && job.NoNewPrivs {
		startErr = checkNoNewPrivs(r.pgid)
	}
	if startErr != nil {
		r.terminate()
		r.killAll()
		<-waitCh
		r.reaped.Store(true)
		unregister()
		r.cleanup(log)
		drain(pumps)
		res = startFailed(startErr)
		res.Limits = cg.applied
		return res
	}
	log.Debug().Int("pid", r.pgid).Str("cgroup", cg.v2Dir).Strs("limits", cg.applied).Msg("build started")

	timeout := time.NewTimer(job.Timeout)
	defer timeout.Stop()
	var killTimer <-chan time.Time
	ctxDone := ctx.Done()
	failCh := out.failCh
	var waitErr error
	begin := func() {
		stop() // os/exec calls Cancel (SIGTERM to all) and kills the leader after WaitDelay
		r.terminate()
		if killTimer == nil {
			killTimer = time.After(time.Until(r.killAt))
		}
	}
loop:
	for {
		select {
		case waitErr = <-waitCh:
			break loop
		case <-timeout.C:
			res.TimedOut = true
			log.Info().Dur("timeout", job.Timeout).Msg("build timed out")
			begin()
		case <-ctxDone:
			ctxDone = nil
			res.Cancelled = true
			log.Info().Msg("build cancelled (client gone or daemon stopping)")
			begin()
		case <-failCh:
			failCh = nil
			res.Cancelled = true
			log.Info().Err(out.err).Msg("build cancelled: output could not be delivered")
			begin()
		case sig, ok := <-signals:
			if !ok {
				signals = nil
				continue
			}
			if protocol.SignalName(sig) == "" {
				log.Warn().Str("signal", sig.String()).Msg("signal not forwarded: only INT, TERM, HUP and QUIT are")
				continue
			}
			_ = unix.Kill(-r.pgid, sig)
			log.Info().Str("signal", unix.SignalName(sig)).Msg("signal forwarded to the build's process group")
		case <-killTimer:
			killTimer = nil
			r.killAll()
		}
	}
	r.reaped.Store(true)
	unregister()
	r.cleanup(log)
	drain(pumps)

	st := cmd.ProcessState
	if st == nil {
		res.Code, res.ExitCode = protocol.ExitCannotStart, -1
		res.StartErr = fmt.Errorf("wait for the build: %w", waitErr)
		return res
	}
	ws := st.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		res.ExitCode = -1
		res.Signal = unix.SignalName(ws.Signal())
		res.Code = protocol.ExitCodeForSignal(int(ws.Signal()))
	default:
		res.ExitCode = ws.ExitStatus()
		res.Code = res.ExitCode
	}
	if res.TimedOut {
		res.Code = protocol.ExitTimeout
	}
	log.Debug().Int("code", res.Code).Int("exit_code", res.ExitCode).Str("signal", res.Signal).
		Bool("timed_out", res.TimedOut).Bool("cancelled", res.Cancelled).Msg("build ended")
	return res
}

// cleanup ends whatever of the build is still alive after its leader was
// reaped: SIGTERM (unless already sent), the rest of the grace, then
// SIGKILL, repeated until nothing is left.
func (r *run) cleanup(log zerolog.Logger) {
	if r.empty() {
		return
	}
	r.terminate()
	hardStop := r.killAt.Add(10 * time.Second)
	killed := false
	for {
		if r.empty() {
			return
		}
		left := r.members()
		now := time.Now()
		if now.After(hardStop) {
			log.Error().Ints("pids", left).Msg("build processes left after SIGKILL")
			return
		}
		if !now.Before(r.killAt) {
			if !killed {
				log.Info().Ints("pids", left).Msg("killing what is left of the build")
				killed = true
			}
			r.killAll()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drain waits for the pumps to deliver everything. A pump that blocks in
// emit (a slow client) is making progress and is waited for; one whose pipe
// stays silent for pipeIdle is closed: every process of the build is gone
// by now, so only someone outside the build can still hold the pipe.
func drain(pumps []*pump) {
	for _, p := range pumps {
		last := p.progress.Load()
		idleSince := time.Now()
		t := time.NewTicker(100 * time.Millisecond)
	wait:
		for {
			select {
			case <-p.done:
				break wait
			case <-t.C:
				cur := p.progress.Load()
				if cur != last || p.emitting.Load() {
					last, idleSince = cur, time.Now()
					continue
				}
				if time.Since(idleSince) >= pipeIdle {
					p.close()
				}
			}
		}
		t.Stop()
	}
}

// startCmd starts cmd. With nnp it forks from an OS thread that has
// no_new_privs set, so the child has it from its first instruction: the
// helper sets it again, but no other process of the user can skip it by
// ptracing the helper before it gets there (the helper is dumpable between
// its exec and its PR_SET_DUMPABLE). The thread is never unlocked, so it
// dies with its goroutine and never runs anything else; it lives until
// hold is closed, because the child's Pdeathsig fires when its parent
// thread exits.
func startCmd(cmd *exec.Cmd, nnp bool, hold <-chan struct{}) error {
	if !nnp {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			errc <- os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
			return
		}
		err := cmd.Start()
		errc <- err
		if err == nil {
			<-hold
		}
	}()
	return <-errc
}

// release does, as root, what the helper cannot do for itself, then lets
// it go on to exec the job.
func (x *Executor) release(pid int, goW *os.File) error {
	defer goW.Close()
	// SECURITY: a daemon whose unit lowers its OOM score must not pass that
	// protection on to builds. The helper, not dumpable, cannot write its
	// own /proc files, and raising needs no privilege but lowering would.
	if x.root {
		if err := raiseOOMScoreAdj(pid, 0); err != nil {
			return fmt.Errorf("%w: raise its oom_score_adj: %w", ErrHelper, err)
		}
	}
	if _, err := goW.Write([]byte{'g'}); err != nil {
		return fmt.Errorf("%w: release it: %w", ErrHelper, err)
	}
	return nil
}

// readHelperStatus waits for the helper to exec the job. EOF without data is
// success (the pipe is close-on-exec); data is the helper's error.
func readHelperStatus(f *os.File) error {
	defer f.Close()
	_ = f.SetReadDeadline(time.Now().Add(helperStartTimeout))
	msg, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return fmt.Errorf("%w: read its status: %w", ErrHelper, err)
	}
	if len(msg) > 0 {
		return fmt.Errorf("%w: %s", ErrHelper, msg)
	}
	return nil
}

// checkNoNewPrivs verifies, after the job's exec, that no_new_privs holds.
func checkNoNewPrivs(pid int) error {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil // exited already: nothing left to escalate
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "NoNewPrivs:"); ok {
			if strings.TrimSpace(v) == "1" {
				return nil
			}
			return ErrNoNewPrivs
		}
	}
	return nil
}

// childFiles are the files of one start: the parent's ends are kept, the
// child's are closed after Start.
type childFiles struct {
	stdoutR, stderrR, statusR, goW *os.File
	child                          []*os.File
}

func (f *childFiles) closeChild() {
	for _, c := range f.child {
		c.Close()
	}
	f.child = nil
}

func (f *childFiles) closeAll() {
	f.closeChild()
	for _, c := range []*os.File{f.stdoutR, f.stderrR, f.statusR, f.goW} {
		if c != nil {
			c.Close()
		}
	}
}

// command builds the exec.Cmd that starts the exec helper.
func (x *Executor) command(ctx context.Context, job Job, cg *buildCgroups) (*exec.Cmd, *childFiles, error) {
	files := &childFiles{}
	fail := func(err error) (*exec.Cmd, *childFiles, error) {
		files.closeAll()
		return nil, nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fail(err)
	}
	files.child = append(files.child, devnull)
	var pw [3]*os.File
	for i, dst := range []**os.File{&files.stdoutR, &files.stderrR, &files.statusR} {
		rd, wr, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("pipe: %w", err))
		}
		*dst = rd
		pw[i] = wr
		files.child = append(files.child, wr)
	}
	spec := helperSpec{
		Path:        job.Path,
		Dir:         filepath.Clean(job.Dir),
		Argv:        append([]string{job.Name}, job.Args...),
		Env:         append([]string{}, job.Env...),
		NoNewPrivs:  job.NoNewPrivs,
		Umask:       buildUmask,
		CgroupProcs: len(cg.v1Procs),
		RlimitNproc: cg.nproc,
	}
	specFile, err := writeSpec(&spec)
	if err != nil {
		return fail(err)
	}
	files.child = append(files.child, specFile)
	goR, goW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("pipe: %w", err))
	}
	files.goW = goW
	files.child = append(files.child, goR)

	extra := []*os.File{specFile, pw[2], goR}
	extra = append(extra, cg.v1Procs...)
	attr := &syscall.SysProcAttr{
		Setpgid: true,
		// If the daemon dies, its builds die with it rather than run on
		// unsupervised (the daemon's thread that forked stays alive for
		// the daemon's life: Go does not end threads it did not lock).
		Pdeathsig: syscall.SIGKILL,
	}
	if x.root {
		// SECURITY: Go's child does setgroups, setgid, setuid in this order
		// before exec'ing the helper; NoSetGroups must stay false or the
		// daemon's (root's) supplementary groups would leak into the build.
		attr.Credential = &syscall.Credential{
			Uid:         job.Cred.UID,
			Gid:         job.Cred.GID,
			Groups:      append([]uint32{}, job.Cred.Groups...),
			NoSetGroups: false,
		}
	}
	if cg.v2FD != nil {
		// Placed into its cgroup atomically at clone time: nothing it
		// starts can ever be outside it.
		attr.UseCgroupFD = true
		attr.CgroupFD = int(cg.v2FD.Fd())
	}
	cmd := exec.CommandContext(ctx, x.helper, helperArg)
	// The helper's own environment is empty (never nil: nil means the
	// daemon's); the job's travels in the spec.
	cmd.Env = []string{}
	cmd.Dir = job.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, pw[0], pw[1]
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = attr
	return cmd, files, nil
}

// writeSpec puts the helper's spec in a sealed memfd, read from the start.
func writeSpec(spec *helperSpec) (*os.File, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode helper spec: %w", err)
	}
	fd, err := unix.MemfdCreate("build-service-job", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "build-service-job")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write helper spec: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl(F_ADD_SEALS)", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("rewind helper spec: %w", err)
	}
	return f, nil
}

// unwrapPathErr returns the errno under a *fs.PathError, so a message does
// not repeat the path it already names.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
