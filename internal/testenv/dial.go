package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The daemon's peer is whoever called connect(2), so a test that wants to
// be bs-alice must connect from a process running as bs-alice. DialAs runs
// a copy of the test binary as the user (the dialer); it connects and hands
// the connected socket back over a socketpair (SCM_RIGHTS). The kernel
// keeps the connecting process's credentials on the socket, so the daemon
// sees the user, and the test drives the connection in-process.

const dialerEnv = "BUILD_SERVICE_TEST_DIAL"

// DialerMain must be called first in the TestMain of a package that uses
// DialAs: in the dialer child it connects and never returns.
func DialerMain() {
	path := os.Getenv(dialerEnv)
	if path == "" {
		return
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(3)
	}
	f, err := c.File()
	if err != nil {
		os.Exit(4)
	}
	if err := unix.Sendmsg(3, []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0); err != nil {
		fmt.Fprintln(os.Stderr, "sendmsg:", err)
		os.Exit(5)
	}
	os.Exit(0)
}

// InstallDialer copies the running test binary into dir (which must be
// searchable by the test users; go test's own directory is 0700) and
// returns its path, for DialAs.
func InstallDialer(dir string) (string, error) {
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		return "", fmt.Errorf("read the test binary: %w", err)
	}
	bin := filepath.Join(dir, "dialer")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		return "", fmt.Errorf("install the dialer: %w", err)
	}
	return bin, nil
}

// DialAs returns a connection to the unix socket at path, connected by the
// dialer running as u (with u's groups).
func DialAs(t testing.TB, dialer string, u User, path string) *net.UnixConn {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours := os.NewFile(uintptr(fds[0]), "dial-parent")
	theirs := os.NewFile(uintptr(fds[1]), "dial-child")
	defer ours.Close()
	groups := make([]uint32, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, uint32(g))
	}
	cmd := exec.Command(dialer)
	cmd.Env = []string{dialerEnv + "=" + path}
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: groups}}
	out, err := cmd.CombinedOutput()
	theirs.Close()
	if err != nil {
		t.Fatalf("dial as %s: %v %s", u.Name, err, out)
	}
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(ours.Fd()), buf, oob, 0)
	if err != nil {
		t.Fatalf("recvmsg: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control message: %v", err)
	}
	rights, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(rights) != 1 {
		t.Fatalf("rights: %v", err)
	}
	f := os.NewFile(uintptr(rights[0]), "conn")
	defer f.Close()
	fc, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	return fc.(*net.UnixConn)
}
