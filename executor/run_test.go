package executor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/build-service/build-service/internal/testenv"
)

func TestBuildRunsWithExactlyTheCallersIdentity(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	res, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", "id -u; id -g; id -G; id -u -r; id -g -r"))
	if res.Code != 0 || res.StartErr != nil {
		t.Fatalf("result %+v\n%s", res, c)
	}
	out, _ := c.out()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("id printed %q", out)
	}
	if lines[0] != strconv.Itoa(u.UID) || lines[3] != strconv.Itoa(u.UID) {
		t.Errorf("uid (effective, real) = %s, %s; want %d", lines[0], lines[3], u.UID)
	}
	if lines[1] != strconv.Itoa(u.GID) || lines[4] != strconv.Itoa(u.GID) {
		t.Errorf("gid (effective, real) = %s, %s; want %d", lines[1], lines[4], u.GID)
	}
	var got []int
	for _, f := range strings.Fields(lines[2]) {
		g, _ := strconv.Atoi(f)
		got = append(got, g)
	}
	want := append([]int{}, u.Groups...)
	sort.Ints(got)
	sort.Ints(want)
	if !slices.Equal(got, want) {
		t.Errorf("groups = %v, want exactly %v (no group of the daemon's)", got, want)
	}
	assertNothingLeft(t, u)
}

func TestBuildRunsWithOnlyTheGroupsAsked(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	j := job(u, ws, "/usr/bin/id", "-G")
	j.Cred.Groups = nil // a container that passes no groups through
	res, c := runJob(t, x, j)
	out, _ := c.out()
	if res.Code != 0 || strings.TrimSpace(out) != strconv.Itoa(u.GID) {
		t.Errorf("id -G = %q (result %+v), want only the gid %d", out, res, u.GID)
	}
	assertNothingLeft(t, u)
}

func TestRefusesToRunAsRoot(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	marker := filepath.Join(ws, "ran")
	base := job(u, ws, "/usr/bin/touch", marker)
	cases := []struct {
		name string
		cred Credential
	}{
		{"a zero-valued credential", Credential{}},
		{"uid 0 with the caller's gid", Credential{UID: 0, GID: uint32(u.GID)}},
		{"the caller's uid with gid 0", Credential{UID: uint32(u.UID), GID: 0}},
		{"the caller's uid and gid plus group 0", Credential{UID: uint32(u.UID), GID: uint32(u.GID), Groups: []uint32{uint32(u.GID), 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused before anything starts", func(t *testing.T) {
			j := base
			j.Cred = tc.cred
			res, c := runJob(t, x, j)
			if !errors.Is(res.StartErr, ErrRootCredential) || res.Code != 127 {
				t.Errorf("result %+v, want StartErr %v and code 127\n%s", res, ErrRootCredential, c)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the job ran")
			}
		})
	}
	assertNothingLeft(t, u)
}

func TestExitStatusIsReportedAsTheTableSays(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	cases := []struct {
		name     string
		script   string
		code     int
		exitCode int
		signal   string
	}{
		{"success is 0", "exit 0", 0, 0, ""},
		{"make's failure code 2 passes through", "exit 2", 2, 2, ""},
		{"a build exiting 124 itself is not a timeout", "exit 124", 124, 124, ""},
		{"a build exiting 127 itself is not a start failure", "exit 127", 127, 127, ""},
		{"death by SIGINT is 130", "kill -INT $$", 130, -1, "SIGINT"},
		{"death by SIGKILL is 137", "kill -KILL $$", 137, -1, "SIGKILL"},
		{"death by SIGTERM is 143", "kill -TERM $$", 143, -1, "SIGTERM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", tc.script))
			if res.Code != tc.code || res.ExitCode != tc.exitCode || res.Signal != tc.signal || res.TimedOut || res.Cancelled || res.StartErr != nil {
				t.Errorf("result %+v, want code %d exit code %d signal %q\n%s", res, tc.code, tc.exitCode, tc.signal, c)
			}
		})
	}
	assertNothingLeft(t, u)
}

func TestACommandThatCannotBeStartedIs127WithAReason(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	cases := []struct {
		name string
		edit func(*Job)
		want error
	}{
		{"a missing binary", func(j *Job) { j.Path = "/nonexistent/make" }, ErrHelper},
		{"a relative path", func(j *Job) { j.Path = "make" }, ErrBadJob},
		{"a working directory that does not exist", func(j *Job) { j.Dir = filepath.Join(ws, "missing") }, nil},
		{"no timeout", func(j *Job) { j.Timeout = 0 }, ErrBadJob},
		{"an environment entry without '='", func(j *Job) { j.Env = append(j.Env, "JUNK") }, ErrBadJob},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := makeJob(u, ws, "--version")
			tc.edit(&j)
			res, c := runJob(t, x, j)
			if res.Code != 127 || res.StartErr == nil || (tc.want != nil && !errors.Is(res.StartErr, tc.want)) {
				t.Errorf("result %+v, want code 127 and a StartErr (%v)\n%s", res, tc.want, c)
			}
			if out, _ := c.out(); strings.Contains(out, "GNU Make") {
				t.Errorf("make ran: %q", out)
			}
		})
	}
	assertNothingLeft(t, u)
}

func TestAHelperTheUserCannotExecuteIs127NotABuildWithoutNoNewPrivs(t *testing.T) {
	u := carol(t)
	dir := testenv.SharedTempDir(t)
	helper := filepath.Join(dir, "helper")
	if err := copyFile(testHelper, helper, 0o755); err != nil {
		t.Fatal(err)
	}
	x, err := New(Options{HelperPath: helper})
	if err != nil {
		t.Fatal(err)
	}
	// After New, the operator breaks the install.
	if err := os.Chmod(helper, 0o700); err != nil {
		t.Fatal(err)
	}
	ws := workspace(t, u)
	res, c := runJob(t, x, job(u, ws, "/usr/bin/id", "-u"))
	if res.Code != 127 || res.StartErr == nil {
		t.Errorf("result %+v, want 127 with StartErr\n%s", res, c)
	}
	if out, _ := c.out(); out != "" {
		t.Errorf("something ran: %q", out)
	}
	assertNothingLeft(t, u)
}

func TestNewRefusesAHelperTheBuildUserCouldNotRunOrOthersCouldReplace(t *testing.T) {
	testenv.RequireRoot(t)
	private := t.TempDir() // 0700
	shared := testenv.SharedTempDir(t)
	writable := filepath.Join(shared, "writable")
	if err := os.Mkdir(writable, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(writable, 0o777)
	cases := []struct {
		name string
		path string
		mode os.FileMode
	}{
		{"a helper in a 0700 directory", filepath.Join(private, "h"), 0o755},
		{"a helper not executable by others", filepath.Join(shared, "h1"), 0o750},
		{"a group-writable helper", filepath.Join(shared, "h2"), 0o775},
		{"a helper in a world-writable directory", filepath.Join(writable, "h"), 0o755},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			if err := copyFile(testHelper, tc.path, tc.mode); err != nil {
				t.Fatal(err)
			}
			if _, err := New(Options{HelperPath: tc.path}); err == nil {
				t.Errorf("New accepted %s", tc.path)
			}
		})
	}
}

func TestBuildStartsClean(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)

	t.Run("only fds 0, 1 and 2 are open, even when the daemon holds inherited fds", func(t *testing.T) {
		// An fd without close-on-exec, as systemd's LISTEN_FDS are.
		f, err := os.Open("/etc/hostname")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := fcntlClearCloexec(f); err != nil {
			t.Fatal(err)
		}
		res, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", "ls /proc/$$/fd"))
		out, _ := c.out()
		if res.Code != 0 || strings.Fields(out) == nil || strings.Join(strings.Fields(out), " ") != "0 1 2" {
			t.Errorf("fds = %q (result %+v)\n%s", out, res, c)
		}
	})
	t.Run("stdin is /dev/null at EOF", func(t *testing.T) {
		res, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", "readlink /proc/$$/fd/0; cat; echo eof"))
		out, _ := c.out()
		if res.Code != 0 || out != "/dev/null\neof\n" {
			t.Errorf("stdin: %q (result %+v)", out, res)
		}
	})
	t.Run("umask is 022", func(t *testing.T) {
		old := syscall.Umask(0o077)
		defer syscall.Umask(old)
		_, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", "umask"))
		if out, _ := c.out(); strings.TrimSpace(out) != "0022" {
			t.Errorf("umask = %q", out)
		}
	})
	t.Run("no signal is ignored or blocked, even when the daemon ignores SIGHUP", func(t *testing.T) {
		ignoreSIGHUP(t)
		res, c := runJob(t, x, job(u, ws, "/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"))
		out, _ := c.out()
		want := "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
		if res.Code != 0 || out != want {
			t.Errorf("status = %q, want %q", out, want)
		}
	})
	t.Run("the environment is exactly the job's: no NOTIFY_SOCKET or LISTEN_FDS of the daemon", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
		t.Setenv("LISTEN_FDS", "1")
		t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		j := job(u, ws, "/usr/bin/env")
		j.Env = []string{"PATH=/usr/bin:/bin", "CFLAGS=-O2 -g", "HOME=" + ws}
		res, c := runJob(t, x, j)
		out, _ := c.out()
		got := strings.Split(strings.TrimSpace(out), "\n")
		sort.Strings(got)
		want := []string{"CFLAGS=-O2 -g", "HOME=" + ws, "PATH=/usr/bin:/bin"}
		if res.Code != 0 || !slices.Equal(got, want) {
			t.Errorf("env = %q, want %q", got, want)
		}
	})
	t.Run("an empty environment stays empty", func(t *testing.T) {
		j := job(u, ws, "/usr/bin/env")
		j.Env = nil
		res, c := runJob(t, x, j)
		if out, _ := c.out(); res.Code != 0 || out != "" {
			t.Errorf("env = %q (result %+v)", out, res)
		}
	})
	t.Run("the build is its own process group leader", func(t *testing.T) {
		res, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", `echo $$ $(ps -o pgid= -p $$)`))
		f := strings.Fields(func() string { o, _ := c.out(); return o }())
		if res.Code != 0 || len(f) != 2 || f[0] != f[1] {
			t.Errorf("pid and pgid = %v (result %+v)", f, res)
		}
	})
	t.Run("the working directory is the job's", func(t *testing.T) {
		_, c := runJob(t, x, job(u, ws, "/bin/pwd"))
		if out, _ := c.out(); strings.TrimSpace(out) != ws {
			t.Errorf("pwd = %q, want %q", out, ws)
		}
	})
	assertNothingLeft(t, u)
}

func TestNoNewPrivsStopsASetuidBinaryFromRising(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	// /tmp here is on the root file system, mounted without nosuid; the
	// control run below proves it.
	dir := testenv.SharedTempDir(t)
	suid := filepath.Join(dir, "id")
	if err := copyFile("/usr/bin/id", suid, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, 0o4755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(suid)
	if st.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("%s is not setuid: %v", suid, st.Mode())
	}
	cases := []struct {
		name       string
		noNewPrivs bool
		wantEUID   string
		wantNNP    string
	}{
		{"with no_new_privs a setuid-root id reports the caller's euid", true, strconv.Itoa(u.UID), "NoNewPrivs:\t1"},
		{"the control run without no_new_privs reports euid 0 (so the mount honours setuid)", false, "0", "NoNewPrivs:\t0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := job(u, ws, "/bin/sh", "-c", suid+" -u; grep NoNewPrivs /proc/self/status")
			j.NoNewPrivs = tc.noNewPrivs
			res, c := runJob(t, x, j)
			out, _ := c.out()
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if res.Code != 0 || len(lines) != 2 || lines[0] != tc.wantEUID || lines[1] != tc.wantNNP {
				t.Errorf("euid = %q, want %s (result %+v)\n%s", out, tc.wantEUID, res, c)
			}
		})
	}
	assertNothingLeft(t, u)
}

// fcntlClearCloexec makes f survive exec, as an inherited fd would.
func fcntlClearCloexec(f *os.File) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_SETFD, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// TestTheDaemonRaisesALoweredOOMScoreOfTheHelper checks raiseOOMScoreAdj
// on a child process: a daemon whose unit lowers its OOM score
// (OOMScoreAdjust) must not pass that on, and the daemon raises the helper's
// back to 0 before the job runs. (Lowering a score to set the scene needs
// CAP_SYS_RESOURCE, which this machine's root lacks, so the child's score is
// raised from 0 to 300 here; never lowered again.)
func TestTheDaemonRaisesALoweredOOMScoreOfTheHelper(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := exec.Command("/bin/sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	if err := raiseOOMScoreAdj(pid, 300); err != nil {
		t.Fatal(err)
	}
	if err := raiseOOMScoreAdj(pid, 100); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
	if strings.TrimSpace(string(data)) != "300" {
		t.Errorf("oom_score_adj = %q, want 300 (raised, then not lowered)", data)
	}
}
