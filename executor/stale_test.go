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
