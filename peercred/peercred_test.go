package peercred_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/peercred"
)

// TestMain doubles as the client process: when PEERCRED_TEST_DIAL is set,
// this binary (started as another user) connects, waits for EOF and exits.
func TestMain(m *testing.M) {
	if path := os.Getenv("PEERCRED_TEST_DIAL"); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			os.Stderr.WriteString("dial: " + err.Error() + "\n")
			os.Exit(3)
		}
		buf := make([]byte, 1)
		c.Read(buf)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func listen(t *testing.T) (*net.UnixListener, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "peercred-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	return l, path
}

func TestGetReportsOwnProcessAndKeepsDeadlinesWorking(t *testing.T) {
	l, path := listen(t)
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	cred, err := peercred.Get(conn)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if cred.UID != os.Getuid() || cred.GID != os.Getgid() || cred.PID != os.Getpid() {
		t.Errorf("cred = %+v, want uid %d gid %d pid %d", cred, os.Getuid(), os.Getgid(), os.Getpid())
	}
	want, _ := os.Getgroups()
	got := slices.Clone(cred.Groups)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("groups = %v, want %v", got, want)
	}

	// conn.File() would have made the socket blocking; a deadline must still fire.
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 1))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read after Get: %v, want deadline exceeded", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("read deadline did not fire after Get: socket went blocking")
	}
}

func TestGetReportsAnotherUsersUIDGIDAndGroups(t *testing.T) {
	alice, _ := testenv.EnsureUsers(t)
	t.Run("alice with her groups", func(t *testing.T) {
		checkPeer(t, alice, alice.Groups)
	})
	t.Run("alice with 100 groups (more than the first buffer holds)", func(t *testing.T) {
		var many []int
		for g := 70000; g < 70100; g++ {
			many = append(many, g)
		}
		checkPeer(t, alice, many)
	})
	t.Run("alice with no supplementary groups", func(t *testing.T) {
		checkPeer(t, alice, []int{})
	})
}

func checkPeer(t *testing.T, alice testenv.User, want []int) {
	l, path := listen(t)
	groups := make([]uint32, 0, len(want))
	for _, g := range want {
		groups = append(groups, uint32(g))
	}
	// The go test binary sits in 0700 directories alice cannot enter: copy it.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(path), "client")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "PEERCRED_TEST_DIAL="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(alice.UID), Gid: uint32(alice.GID), Groups: groups,
	}}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.SetDeadline(time.Now().Add(15 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("accept: %v", err)
	}
	cred, err := peercred.Get(conn)
	conn.Close()
	if werr := cmd.Wait(); werr != nil {
		t.Errorf("client: %v", werr)
	}
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if cred.UID != alice.UID || cred.GID != alice.GID || cred.PID != cmd.Process.Pid {
		t.Errorf("cred = %+v, want uid %d gid %d pid %d", cred, alice.UID, alice.GID, cmd.Process.Pid)
	}
	got := slices.Clone(cred.Groups)
	want = slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("groups = %v, want %v", got, want)
	}
}
