package testenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func idsOf(t *testing.T, s string) []int {
	t.Helper()
	var out []int
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("parse id %q in %q: %v", f, s, err)
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

func sortedUnique(ids ...int) []int {
	seen := map[int]bool{}
	var out []int
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Ints(out)
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestContainerIdentity(t *testing.T) {
	alice, _ := EnsureUsers(t)
	team := GroupID(t, GroupShared)
	carol := Carol(t)
	cases := []struct {
		name   string
		groups []int
		want   []int // id -G, as a set
	}{
		{"a nil group list gives the account's groups", nil, sortedUnique(append([]int{alice.GID}, alice.Groups...)...)},
		{"an explicit group list is exactly what the process gets", []int{team}, sortedUnique(alice.GID, team)},
		{"a group the account does not have can be given, to test the daemon's intersection", []int{carol.GID}, sortedUnique(alice.GID, carol.GID)},
		{"an empty group list leaves only the primary gid", []int{}, []int{alice.GID}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Container{User: UserAlice, Groups: tc.groups}
			res := RunInContainer(t, ctx(t), c, "sh", "-c", "id -u; id -g; id -G")
			if res.Code != 0 {
				t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
			}
			lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
			if len(lines) != 3 {
				t.Fatalf("output %q", res.Stdout)
			}
			if lines[0] != strconv.Itoa(alice.UID) || lines[1] != strconv.Itoa(alice.GID) {
				t.Errorf("uid/gid = %s/%s, want %d/%d", lines[0], lines[1], alice.UID, alice.GID)
			}
			if got := idsOf(t, lines[2]); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("id -G = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestContainerRootCaller(t *testing.T) {
	RequireRoot(t)
	res := RunInContainer(t, ctx(t), Container{User: "root"}, "id", "-u")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "0" {
		t.Fatalf("root in container: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
}

func TestContainerMounts(t *testing.T) {
	EnsureUsers(t)
	base := SharedTempDir(t)
	ws := filepath.Join(base, "ws")
	secret := filepath.Join(base, "opt")
	ctr := filepath.Join(base, "ctr")
	for _, d := range []string{ws, secret, ctr} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ws, "in-workspace"), []byte("ws\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secret, "libsecret.so"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Container{
		User:  UserAlice,
		Hides: []string{secret, ctr},
		Binds: []Bind{
			{Host: ws, Container: "/home/" + UserAlice},
			{Host: ws, Container: filepath.Join(ctr, "ro", "ws"), ReadOnly: true},
		},
		Cwd: "/home/" + UserAlice,
	}
	script := `set -e
cat in-workspace
ls -A "$1" | wc -l
cat "$2/ro/ws/in-workspace"
if touch "$2/ro/ws/new" 2>/dev/null; then echo writable; else echo read-only; fi
pwd`
	res := RunInContainer(t, ctx(t), c, "sh", "-c", script, "sh", secret, ctr)
	want := "ws\n0\nws\nread-only\n/home/" + UserAlice + "\n"
	if res.Code != 0 || res.Stdout != want {
		t.Fatalf("exit %d, stdout %q (want %q), stderr %q", res.Code, res.Stdout, want, res.Stderr)
	}

	t.Run("the host keeps its view: hidden files are still there and no mount point was created", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(secret, "libsecret.so")); err != nil {
			t.Errorf("host lost the hidden file: %v", err)
		}
		if _, err := os.Stat(filepath.Join(ctr, "ro")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mount point under a hidden dir leaked to the host: %v", err)
		}
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(mi), "testenv-hide") {
			t.Errorf("a hide leaked into the host mount namespace")
		}
	})
}

func TestContainerEnvironmentIsClean(t *testing.T) {
	EnsureUsers(t)
	t.Setenv("BS_TEST_SECRET_TOKEN", "leak")
	c := Container{User: UserBob, Env: []string{"BUILD_SERVICE_SOCKET=/run/x.sock", "PATH=/bin"}}
	res := RunInContainer(t, ctx(t), c, "/usr/bin/env")
	got := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	sort.Strings(got)
	want := []string{
		"BUILD_SERVICE_SOCKET=/run/x.sock",
		"HOME=/home/" + UserBob,
		"LANG=C.UTF-8",
		"LOGNAME=" + UserBob,
		"PATH=/bin",
		"PWD=/",
		"USER=" + UserBob,
	}
	if res.Code != 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("exit %d, env %q, want %q (stderr %q)", res.Code, got, want, res.Stderr)
	}
}

func TestContainerExitCodes(t *testing.T) {
	EnsureUsers(t)
	cases := []struct {
		name string
		argv []string
		want int
	}{
		{"a command's exit status comes back as is", []string{"sh", "-c", "exit 7"}, 7},
		{"a 125 from the command is the command's, not a setup failure", []string{"sh", "-c", "exit 125"}, 125},
		{"a command killed by a signal gives 128+N", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := RunInContainer(t, ctx(t), Container{User: UserBob}, tc.argv...)
			if res.Code != tc.want {
				t.Fatalf("exit %d, want %d (stderr %q)", res.Code, tc.want, res.Stderr)
			}
		})
	}
}

func TestContainerSetupFailures(t *testing.T) {
	EnsureUsers(t)
	base := SharedTempDir(t)
	hidden := filepath.Join(base, "hidden")
	if err := os.MkdirAll(filepath.Join(hidden, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		c    Container
	}{
		{"a cwd the user cannot enter", Container{User: UserBob, Cwd: private}},
		{"a cwd that does not exist", Container{User: UserBob, Cwd: filepath.Join(base, "missing")}},
		{"a bind whose source is hidden", Container{User: UserBob, Hides: []string{hidden}, Binds: []Bind{{Host: filepath.Join(hidden, "src"), Container: "/home/" + UserBob}}}},
		{"a mount point that would have to be created on the host", Container{User: UserBob, Binds: []Bind{{Host: base, Container: filepath.Join(base, "nope")}}}},
		{"a bind source that does not exist", Container{User: UserBob, Binds: []Bind{{Host: filepath.Join(base, "missing"), Container: "/home/" + UserBob}}}},
		{"a user that does not exist", Container{User: "bs-no-such-user"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.c.Run(ctx(t), "touch", filepath.Join(base, "ran"))
			if err == nil {
				t.Fatalf("no error; exit %d, stderr %q", res.Code, res.Stderr)
			}
			if _, serr := os.Stat(filepath.Join(base, "ran")); serr == nil {
				t.Fatalf("the command ran despite: %v", err)
			}
		})
	}
	for name, c := range map[string]Container{
		"a failed cd is reported as ErrContainerSetup":    {User: UserBob, Cwd: private},
		"a failed mount is reported as ErrContainerSetup": {User: UserBob, Binds: []Bind{{Host: filepath.Join(base, "missing"), Container: "/home/" + UserBob}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Run(ctx(t), "true")
			if !errors.Is(err, ErrContainerSetup) {
				t.Fatalf("err = %v, want ErrContainerSetup", err)
			}
		})
	}
}
