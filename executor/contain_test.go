package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/build-service/build-service/protocol"
)

// Each of these ends with a scan of /proc by uid: nothing of the build may
// be left, in either containment mode.

func TestNothingTheBuildStartedOutlivesIt(t *testing.T) {
	cases := []struct {
		name     string
		makefile string
		timeout  time.Duration
		code     int
		timedOut bool
	}{
		{
			name:     "a Makefile that starts setsid sleep 300 in the background",
			makefile: "all:\n\tsetsid sleep 300 > /dev/null 2>&1 &\n\t@echo started\n",
			code:     0,
		},
		{
			name:     "a Makefile that double-forks a daemon holding the output pipe",
			makefile: "all:\n\t@sh -c 'setsid sh -c \"sleep 300 & echo daemon\" &'\n\t@echo forked\n",
			code:     0,
		},
		{
			name:     "a Makefile whose recipe traps and ignores TERM, killed after the grace",
			makefile: "all:\n\t@echo waiting; sh -c 'trap \"\" TERM; sleep 300 & trap \"\" TERM; while :; do sleep 1; done'\n",
			timeout:  time.Second,
			code:     protocol.ExitTimeout,
			timedOut: true,
		},
		{
			name:     "a Makefile whose recipe escapes with setsid and ignores TERM",
			makefile: "all:\n\tsetsid sh -c 'trap \"\" TERM; exec sleep 300' &\n\tsleep 300\n",
			timeout:  time.Second,
			code:     protocol.ExitTimeout,
			timedOut: true,
		},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			u := carol(t)
			x := newExecutor(t, m.opts)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					ws := workspace(t, u)
					writeFile(t, filepath.Join(ws, "Makefile"), tc.makefile)
					j := makeJob(u, ws)
					if tc.timeout > 0 {
						j.Timeout = tc.timeout
					}
					begin := time.Now()
					res, c := runJob(t, x, j)
					if res.Code != tc.code || res.TimedOut != tc.timedOut || res.StartErr != nil {
						t.Errorf("result %+v, want code %d timed_out %v\n%s", res, tc.code, tc.timedOut, c)
					}
					if d := time.Since(begin); d > 15*time.Second {
						t.Errorf("Run took %v", d)
					}
					assertNothingLeft(t, u)
				})
			}
		})
	}
}

func TestTimeoutTerminatesThenKills(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	t.Run("a sleeping target times out with 124", func(t *testing.T) {
		writeFile(t, filepath.Join(ws, "Makefile"), "all:\n\tsleep 300\n")
		j := makeJob(u, ws)
		j.Timeout = time.Second
		res, c := runJob(t, x, j)
		if res.Code != 124 || !res.TimedOut || res.Cancelled {
			t.Errorf("result %+v\n%s", res, c)
		}
		assertNothingLeft(t, u)
	})
	t.Run("a build ignoring TERM is killed after the default grace of 5 s", func(t *testing.T) {
		j := job(u, ws, "/bin/sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`)
		j.Timeout = time.Second
		j.KillGrace = 0 // the default
		begin := time.Now()
		res, c := runJob(t, x, j)
		d := time.Since(begin)
		if res.Code != 124 || !res.TimedOut || res.Signal != "SIGKILL" {
			t.Errorf("result %+v\n%s", res, c)
		}
		// The grace is a timer: it cannot end early, whatever the load.
		if d < time.Second+DefaultKillGrace-100*time.Millisecond || d > 20*time.Second {
			t.Errorf("timeout plus grace took %v, want about 1 s + %v", d, DefaultKillGrace)
		}
		assertNothingLeft(t, u)
	})
}

func TestCancelWhenTheClientGoesAway(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			u := carol(t)
			x := newExecutor(t, m.opts)
			ws := workspace(t, u)
			// make runs a recipe that reports TERM and a background child
			// that ignores it: TERM must arrive at once, KILL after the grace.
			writeFile(t, filepath.Join(ws, "Makefile"), "all:\n"+
				"\t@sh -c 'trap \"\" TERM; exec sleep 300' &\n"+
				"\t@trap 'echo got TERM; exit 1' TERM; echo running; while :; do sleep 0.1; done\n")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cancelledAt, termAt time.Time
			c := &collector{}
			c.onOutput = func(ev protocol.Event) {
				switch {
				case strings.Contains(ev.Data, "running") && cancelledAt.IsZero():
					cancelledAt = time.Now()
					cancel()
				case strings.Contains(ev.Data, "got TERM"):
					termAt = time.Now()
				}
			}
			res := x.Run(ctx, makeJob(u, ws), c.emit, nil)
			if !res.Cancelled || res.TimedOut {
				t.Errorf("result %+v\n%s", res, c)
			}
			if termAt.IsZero() {
				t.Fatalf("the build never saw TERM\n%s", c)
			}
			if d := termAt.Sub(cancelledAt); d > 3*time.Second {
				t.Errorf("TERM arrived %v after the cancel, want within about 1 s", d)
			}
			assertNothingLeft(t, u)
		})
	}
}

func TestAClientGoneBeforeTheStartStartsNothing(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	marker := filepath.Join(ws, "ran")
	res := x.Run(ctx, job(u, ws, "/usr/bin/touch", marker), nil, nil)
	if !res.Cancelled || res.StartErr == nil || res.Code != 127 {
		t.Errorf("result %+v", res)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the job ran")
	}
}

func TestAnEmitErrorCancelsTheBuild(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	emits := 0
	emit := func(protocol.Event) error {
		emits++
		return syscall.EPIPE
	}
	j := job(u, ws, "/bin/sh", "-c", "while :; do echo spam; sleep 0.05; done")
	res := x.Run(context.Background(), j, emit, nil)
	if !res.Cancelled || emits != 1 {
		t.Errorf("result %+v after %d emits, want cancelled after the first", res, emits)
	}
	assertNothingLeft(t, u)
}

// TestForwardedSignals forwards each signal to a build whose leader has no
// handler of its own. (make and sh -c catch INT and each has a race when
// the signal reaches it and its child at the same moment, as Ctrl-C on a
// terminal does: GNU make 4.3 now and then exits 2 with "wait: No child
// processes" instead of dying of the signal. The executor cannot change
// that; these builds show what it does: the group gets the signal once the
// job runs, and the result says how it died.)
func TestForwardedSignals(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	cases := []struct {
		name   string
		sig    syscall.Signal
		code   int
		signal string
	}{
		{"Ctrl-C (INT) ends the build with 130", syscall.SIGINT, 130, "SIGINT"},
		{"TERM ends the build with 143", syscall.SIGTERM, 143, "SIGTERM"},
		{"HUP ends the build with 129", syscall.SIGHUP, 129, "SIGHUP"},
		{"QUIT ends the build with 131", syscall.SIGQUIT, 131, "SIGQUIT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Sent before the job starts: Run forwards it once the job
			// has been exec'd, never to the exec helper.
			sigs := make(chan syscall.Signal, 1)
			sigs <- tc.sig
			res, _ := x.Run(context.Background(), job(u, ws, "/bin/sleep", "300"), nil, sigs), 0
			if res.Code != tc.code || res.Signal != tc.signal || res.Cancelled || res.TimedOut {
				t.Errorf("result %+v, want code %d signal %s", res, tc.code, tc.signal)
			}
			assertNothingLeft(t, u)
		})
	}
	t.Run("every process of the group gets it", func(t *testing.T) {
		sigs := make(chan syscall.Signal, 1)
		c := &collector{}
		c.onOutput = func(ev protocol.Event) {
			if strings.Contains(ev.Data, "ready") {
				sigs <- syscall.SIGHUP
			}
		}
		// The leader waits for a child that reports the signal.
		script := `sh -c 'trap "echo child got HUP; exit 5" HUP; echo ready; while :; do sleep 0.05; done'; echo "child exited $?"`
		res := x.Run(context.Background(), job(u, ws, "/bin/sh", "-c", "trap 'echo leader got HUP' HUP; "+script), c.emit, sigs)
		out, _ := c.out()
		if res.Code != 0 || !strings.Contains(out, "child got HUP") || !strings.Contains(out, "child exited 5") || !strings.Contains(out, "leader got HUP") {
			t.Errorf("result %+v\n%s", res, c)
		}
		assertNothingLeft(t, u)
	})
	t.Run("a signal that is not forwardable is ignored", func(t *testing.T) {
		sigs := make(chan syscall.Signal, 1)
		sigs <- syscall.SIGKILL
		res, _ := x.Run(context.Background(), job(u, ws, "/bin/sh", "-c", "sleep 0.5; exit 3"), nil, sigs), 0
		if res.Code != 3 {
			t.Errorf("result %+v, want the build's own 3", res)
		}
	})
}

func TestAGrandchildHoldingThePipesDoesNotHoldBackTheResult(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	// The background sleep keeps stdout and stderr open after sh exits.
	begin := time.Now()
	res, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", "trap '' TERM; sleep 300 & echo done"))
	if res.Code != 0 {
		t.Errorf("result %+v\n%s", res, c)
	}
	if out, _ := c.out(); out != "done\n" {
		t.Errorf("stdout %q", out)
	}
	// Killed after the grace (1 s) with the cgroup, not after 300 s.
	if d := time.Since(begin); d > 15*time.Second {
		t.Errorf("Run took %v", d)
	}
	assertNothingLeft(t, u)
}

func TestPidsMaxStopsAForkLoopWithoutHarmingTheDaemon(t *testing.T) {
	mechanisms := []struct {
		name   string
		opts   Options
		noV1   bool
		expect string
	}{
		{"in a cgroup", Options{}, false, "pids_max=20 via cgroup"},
		{"in a process group under the subreaper", Options{ForceProcessGroup: true}, false, "pids_max=20 via cgroup1"},
		{"with no pids controller at all, through RLIMIT_NPROC", Options{ForceProcessGroup: true}, true, "RLIMIT_NPROC"},
	}
	for _, m := range mechanisms {
		t.Run(m.name, func(t *testing.T) {
			u := carol(t)
			x := newExecutor(t, m.opts)
			if m.noV1 {
				cg := *x.cg
				cg.v1Base = map[string]string{}
				x.cg = &cg
			}
			ws := workspace(t, u)
			writeFile(t, filepath.Join(ws, "Makefile"), "all:\n\t@i=0; while [ $$i -lt 200 ]; do sleep 30 & i=$$((i+1)); done; echo all forked\n")
			j := makeJob(u, ws)
			j.Limits.PidsMax = 20
			res, c := runJob(t, x, j)
			out, errOut := c.out()
			if strings.Contains(out, "all forked") || res.Code == 0 {
				t.Errorf("the fork loop was not stopped: result %+v\n%s", res, c)
			}
			// dash says "Cannot fork"; make itself "Resource temporarily
			// unavailable" when RLIMIT_NPROC (per uid) already counts other
			// processes of the user, unreaped zombies included.
			if e := strings.ToLower(errOut); !strings.Contains(e, "fork") && !strings.Contains(e, "resource temporarily unavailable") {
				t.Errorf("stderr does not report a failed fork:\n%s", c)
			}
			if len(res.Limits) != 1 || !strings.Contains(res.Limits[0], m.expect) {
				t.Errorf("limits applied: %q, want one through %q", res.Limits, m.expect)
			}
			assertNothingLeft(t, u)
			// The daemon (this process) can still start processes.
			if err := exec_true(); err != nil {
				t.Errorf("the daemon cannot fork any more: %v", err)
			}
		})
	}
}

func TestMemoryMaxKillsAMemoryHog(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	// tail keeps the last "line" of newline-free input in memory: 512 MiB.
	j := job(u, ws, "/bin/sh", "-c", "head -c 512m /dev/zero | tail > /dev/null")
	j.Limits.MemoryMax = 64 << 20
	res, c := runJob(t, x, j)
	if res.Code != 128+9 {
		t.Errorf("result %+v, want the shell to report tail killed by SIGKILL (137)\n%s", res, c)
	}
	assertNothingLeft(t, u)
}

func exec_true() error {
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		return err
	}
	_, err = p.Wait()
	return err
}

// TestLimitsAreInEffectInsideTheBuild reads, while the build runs, the
// limit files of the cgroups the build's shell is in.
func TestLimitsAreInEffectInsideTheBuild(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	gofile := filepath.Join(ws, "go")
	files := map[string]string{}
	c := &collector{}
	c.onOutput = func(ev protocol.Event) {
		pid := strings.TrimSpace(ev.Data)
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		pc, err := os.ReadFile("/proc/" + pid + "/cgroup")
		if err != nil {
			t.Errorf("build cgroups: %v", err)
		}
		l := locate(mi, pc)
		read := func(dir, name string) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				files[name] = strings.TrimSpace(string(data))
			}
		}
		for _, dir := range []string{l.v2Dir, l.v1Dir["pids"], l.v1Dir["memory"], l.v1Dir["cpu"]} {
			for _, name := range []string{"pids.max", "memory.max", "cpu.max", "memory.limit_in_bytes", "cpu.cfs_quota_us", "cpu.cfs_period_us"} {
				if dir != "" {
					read(dir, name)
				}
			}
		}
		writeFile(t, gofile, "")
	}
	j := job(u, ws, "/bin/sh", "-c", "echo $$; while [ ! -e go ]; do sleep 0.05; done")
	j.Limits = Limits{PidsMax: 50, MemoryMax: 256 << 20, CPUMax: "50000 100000"}
	res := x.Run(context.Background(), j, c.emit, nil)
	if res.Code != 0 || len(res.Limits) != 3 {
		t.Fatalf("result %+v\n%s", res, c)
	}
	t.Logf("limits: %q; files: %v", res.Limits, files)
	if files["pids.max"] != "50" {
		t.Errorf("pids.max = %q", files["pids.max"])
	}
	if files["memory.max"] != strconv.Itoa(256<<20) && files["memory.limit_in_bytes"] != strconv.Itoa(256<<20) {
		t.Errorf("memory limit = %q / %q", files["memory.max"], files["memory.limit_in_bytes"])
	}
	if files["cpu.max"] != "50000 100000" && (files["cpu.cfs_quota_us"] != "50000" || files["cpu.cfs_period_us"] != "100000") {
		t.Errorf("cpu limit = %q / %q %q", files["cpu.max"], files["cpu.cfs_quota_us"], files["cpu.cfs_period_us"])
	}
	assertNothingLeft(t, u)
}

func TestConcurrentBuildsAreContainedSeparately(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			u := carol(t)
			x := newExecutor(t, m.opts)
			ws := workspace(t, u)
			type out struct {
				res Result
				c   *collector
			}
			const n = 6
			results := make(chan out, n)
			for i := 0; i < n; i++ {
				go func(i int) {
					var j Job
					if i == 0 {
						// One build times out and is killed ...
						j = job(u, ws, "/bin/sh", "-c", "trap '' TERM; sleep 300 & sleep 300")
						j.Timeout = time.Second
					} else {
						// ... while the others finish with their own output.
						j = job(u, ws, "/bin/sh", "-c", fmt.Sprintf("sleep 0.%d; echo build %d; exit %d", i, i, i))
					}
					res, c := runJob(t, x, j)
					results <- out{res, c}
				}(i)
			}
			seen := map[int]bool{}
			for i := 0; i < n; i++ {
				o := <-results
				got, _ := o.c.out()
				switch {
				case o.res.TimedOut:
					if o.res.Code != 124 || seen[0] {
						t.Errorf("timed-out build: %+v", o.res)
					}
					seen[0] = true
				case o.res.Code >= 1 && o.res.Code < n && got == fmt.Sprintf("build %d\n", o.res.Code) && o.res.StartErr == nil:
					seen[o.res.Code] = true
				default:
					t.Errorf("unexpected result %+v\n%s", o.res, o.c)
				}
			}
			if len(seen) != n {
				t.Errorf("saw builds %v, want all %d", seen, n)
			}
			assertNothingLeft(t, u)
		})
	}
}

// TestTheSubreaperReapsOrphansButNotOtherChildren checks the fallback's
// reaper: zombies of build orphans reparented to the daemon are collected,
// while an exec.Cmd of the daemon's own keeps its exit status.
func TestTheSubreaperReapsOrphansButNotOtherChildren(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{ForceProcessGroup: true})
	ws := workspace(t, u)
	// A child of the daemon's own that exits while builds come and go.
	own := exec.Command("/bin/sh", "-c", "sleep 1; exit 7")
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		// The orphan exits by itself right after the build, becoming a
		// zombie child of the daemon.
		res, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", "setsid sh -c 'sleep 0.2' & echo started"))
		if res.Code != 0 {
			t.Errorf("result %+v\n%s", res, c)
		}
	}
	err := own.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("the daemon's own child: %v, want exit status 7", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		z := zombieChildrenOf(os.Getpid(), u.UID)
		if len(z) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("zombie children of the daemon not reaped: %v", z)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assertNothingLeft(t, u)
}

func zombieChildrenOf(ppid, uid int) []int {
	var out []int
	for _, p := range allProcs() {
		if p.ppid == ppid && p.state == 'Z' {
			if u, ok := realUID(p.pid); ok && u == uid {
				out = append(out, p.pid)
			}
		}
	}
	return out
}
