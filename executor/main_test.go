package executor

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/protocol"
)

// testHelper is a copy of this test binary in a world-readable directory:
// the test binary itself lives in a 0700 directory the dropped user cannot
// reach, exactly the pitfall a real install must avoid too.
var testHelper string

func TestMain(m *testing.M) {
	HelperMain()
	os.Setenv("GODEBUG", "execwait=2")
	// bs-carol is this package's alone, and its tests scan /proc by uid:
	// two runs of this package at once (a developer's and ./...) would kill
	// each other's builds. Serialise them.
	// Children of a test that re-run this binary inherit the lock's holder.
	if os.Getenv("BS_EXECUTOR_TESTS_LOCKED") == "" {
		if lock, err := os.OpenFile(filepath.Join(os.TempDir(), "build-service-executor-tests.lock"), os.O_CREATE|os.O_RDWR, 0o600); err == nil {
			if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
				fmt.Fprintln(os.Stderr, "lock:", err)
			}
			os.Setenv("BS_EXECUTOR_TESTS_LOCKED", "1")
		}
	}
	dir, err := os.MkdirTemp("", "bs-executor-helper-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper dir:", err)
		os.Exit(2)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "helper dir:", err)
			return 2
		}
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		testHelper = filepath.Join(dir, "build-service-test-helper")
		if err := copyFile(exe, testHelper, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		return m.Run()
	}()
	os.Exit(code)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// newExecutor returns an executor using the test helper, logging to t.
func newExecutor(t testing.TB, opts Options) *Executor {
	t.Helper()
	opts.HelperPath = testHelper
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t))
	x, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return x
}

// modes are the two containments every leftover test runs under.
var modes = []struct {
	name string
	opts Options
}{
	{"in a cgroup", Options{}},
	{"in a process group under the subreaper", Options{ForceProcessGroup: true}},
}

// carol sets up the executor-only test user and checks that nothing of
// hers is running yet (so a later scan sees only this test's leftovers).
func carol(t testing.TB) testenv.User {
	t.Helper()
	testenv.RequireRoot(t)
	u := testenv.Carol(t)
	if left := testenv.ProcsOfUID(u.UID); len(left) > 0 {
		killUID(u.UID)
		t.Fatalf("processes of %s running before the test (killed now): %v", u.Name, left)
	}
	return u
}

// assertNothingLeft is the check every build test ends with: no live
// process of the build's user (zombies ignored: PID 1 here may not reap).
func assertNothingLeft(t testing.TB, u testenv.User) {
	t.Helper()
	if left := testenv.ProcsOfUID(u.UID); len(left) > 0 {
		killUID(u.UID)
		t.Errorf("processes of %s left after the build: %v", u.Name, left)
	}
}

func killUID(uid int) {
	for _, p := range testenv.ProcsOfUID(uid) {
		pid, _ := strconv.Atoi(strings.Fields(p)[0])
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// workspace is a directory the user owns, reachable through 0755 parents.
func workspace(t testing.TB, u testenv.User) string {
	t.Helper()
	ws := filepath.Join(testenv.SharedTempDir(t), "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ws, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	return ws
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// job returns a job running argv (argv[0] an absolute path) as u in dir.
func job(u testenv.User, dir string, argv ...string) Job {
	groups := make([]uint32, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = uint32(g)
	}
	return Job{
		ID:         "test",
		Path:       argv[0],
		Name:       filepath.Base(argv[0]),
		Args:       argv[1:],
		Dir:        dir,
		Env:        []string{"PATH=/usr/bin:/bin", "HOME=" + dir},
		Cred:       Credential{UID: uint32(u.UID), GID: uint32(u.GID), Groups: groups},
		Timeout:    60 * time.Second,
		KillGrace:  time.Second,
		NoNewPrivs: true,
	}
}

func makeJob(u testenv.User, dir string, args ...string) Job {
	return job(u, dir, append([]string{"/usr/bin/make"}, args...)...)
}

// collector records events; onOutput, if set, sees each output event as it
// arrives (under the collector's lock, in order).
type collector struct {
	mu       sync.Mutex
	events   []protocol.Event
	stdout   strings.Builder
	stderr   strings.Builder
	onOutput func(ev protocol.Event)
}

func (c *collector) emit(ev protocol.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
	switch ev.Type {
	case protocol.EventStdout:
		c.stdout.WriteString(ev.Data)
	case protocol.EventStderr:
		c.stderr.WriteString(ev.Data)
	}
	if c.onOutput != nil {
		c.onOutput(ev)
	}
	return nil
}

func (c *collector) out() (string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stdout.String(), c.stderr.String()
}

func (c *collector) String() string {
	o, e := c.out()
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", o, e)
}

// runJob runs j and returns the result and what was emitted.
func runJob(t testing.TB, x *Executor, j Job) (Result, *collector) {
	t.Helper()
	c := &collector{}
	res := x.Run(context.Background(), j, c.emit, nil)
	return res, c
}

// ignoreSIGHUP makes the test process (the daemon here) ignore SIGHUP, as
// one started under nohup would, for the rest of the test.
func ignoreSIGHUP(t testing.TB) {
	signal.Ignore(syscall.SIGHUP)
	t.Cleanup(func() { signal.Reset(syscall.SIGHUP) })
}
