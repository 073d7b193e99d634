package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A daemon killed with SIGKILL leaves its builds' cgroups, and whatever a
// build started with setsid, running with no timeout and no one to report
// to. The next daemon to start ends them.
func TestARestartedDaemonKillsWhatADeadDaemonsBuildsLeftRunning(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	base := x.cg.v2Base
	if base == "" {
		t.Fatalf("no writable cgroup v2 here: %s", x.Mode())
	}

	// A pid that surely belongs to no live daemon: a process that has exited.
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(base, "build-"+strconv.Itoa(dead.Process.Pid)+"-1-crashed")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Rmdir(stale) })

	// The orphaned build: a setsid'd sleep running as the build user inside
	// the dead daemon's build cgroup.
	f, err := os.Open(stale)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	orphan := exec.Command("/usr/bin/setsid", "/bin/sleep", "300")
	orphan.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)},
		UseCgroupFD: true,
		CgroupFD:    int(f.Fd()),
	}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { orphan.Wait(); close(exited) }()

	newExecutor(t, Options{}) // the restarted daemon

	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("the orphaned build still runs after a new daemon started")
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale build cgroup %s was not removed: %v", stale, err)
	}
	assertNothingLeft(t, u)
}

// A dead daemon's pid may belong to another process by the time a new
// daemon starts; that process started after the build cgroup was made, so
// it cannot be the daemon that made it.
func TestAReusedPidDoesNotKeepADeadDaemonsBuildsAlive(t *testing.T) {
	live := exec.Command("/bin/sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	at := func(d time.Duration) {
		when := time.Now().Add(d)
		if err := os.Chtimes(dir, when, when); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		pid   int
		made  time.Duration // when the cgroup was made, from now
		alive bool
	}{
		{"a daemon that runs and made its cgroup after it started is alive", live.Process.Pid, 0, true},
		{"a process that started an hour after the cgroup was made is a reused pid", live.Process.Pid, -time.Hour, false},
		{"a pid with no process is dead", dead.Process.Pid, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at(c.made)
			if got := daemonAlive(c.pid, dir); got != c.alive {
				t.Errorf("daemonAlive = %v, want %v", got, c.alive)
			}
		})
	}
}
