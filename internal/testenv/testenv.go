// Package testenv holds helpers shared by the project's tests: the root
// gate, the test users, and small process checks. It is imported only from
// _test.go files and must not import OPA.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where a skip for a
// missing privilege is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips the test when not running as root, and fails it in CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatalf("this test needs root (privilege drop, peer identity, cgroups) and CI=true: run CI as root")
	}
	t.Skip("skipping: needs root (privilege drop, peer identity, cgroups); run as root or in CI")
}

// Test accounts. .ci/run creates them up front; EnsureUsers creates them
// when missing (serialised with a lock file, since concurrent useradd fails
// on the passwd lock).
const (
	UserAlice   = "bs-alice"
	UserBob     = "bs-bob"
	UserCarol   = "bs-carol"  // executor tests only, so their /proc scans see no other package's builds
	GroupShared = "bs-team"   // supplementary group of both users
	GroupDenied = "bs-denied" // supplementary group of alice, for deny_groups tests
)

// User is a test account.
type User struct {
	Name   string
	UID    int
	GID    int
	Groups []int // all groups, primary included
	Home   string
}

// EnsureUsers makes sure the test users and groups exist and returns them.
// Needs root.
func EnsureUsers(t testing.TB) (alice, bob User) {
	t.Helper()
	RequireRoot(t)
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "build-service-test-users.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("open users lock: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock users: %v", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	for _, g := range []string{GroupShared, GroupDenied} {
		if _, err := user.LookupGroup(g); err != nil {
			run(t, "groupadd", g)
		}
	}
	if _, err := user.Lookup(UserAlice); err != nil {
		run(t, "useradd", "--create-home", "--shell", "/bin/sh", "--groups", GroupShared+","+GroupDenied, UserAlice)
	}
	if _, err := user.Lookup(UserBob); err != nil {
		run(t, "useradd", "--create-home", "--shell", "/bin/sh", "--groups", GroupShared, UserBob)
	}
	if _, err := user.Lookup(UserCarol); err != nil {
		run(t, "useradd", "--create-home", "--shell", "/bin/sh", "--groups", GroupShared, UserCarol)
	}
	return lookup(t, UserAlice), lookup(t, UserBob)
}

// Carol returns the executor-only test user, creating the users if needed.
func Carol(t testing.TB) User {
	t.Helper()
	EnsureUsers(t)
	return lookup(t, UserCarol)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func lookup(t testing.TB, name string) User {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	ids, err := u.GroupIds()
	if err != nil {
		t.Fatalf("groups of %s: %v", name, err)
	}
	var groups []int
	for _, s := range ids {
		g, _ := strconv.Atoi(s)
		groups = append(groups, g)
	}
	return User{Name: name, UID: uid, GID: gid, Groups: groups, Home: u.HomeDir}
}

// GroupID returns the gid of a group name.
func GroupID(t testing.TB, name string) int {
	t.Helper()
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatalf("lookup group %s: %v", name, err)
	}
	id, _ := strconv.Atoi(g.Gid)
	return id
}

// ProcsOfUID lists the live (non-zombie) processes owned by uid, as
// "pid comm" strings, by scanning /proc.
func ProcsOfUID(uid int) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		var name, state string
		owner := -1
		for _, line := range strings.Split(string(status), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "Name:":
				name = f[1]
			case "State:":
				state = f[1]
			case "Uid:":
				owner, _ = strconv.Atoi(f[1])
			}
		}
		if owner == uid && state != "Z" && state != "X" {
			out = append(out, fmt.Sprintf("%d %s", pid, name))
		}
	}
	return out
}
