package server_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/build-service/build-service/internal/testenv"
)

// The server's peer is whoever called connect(2), so a test that wants to
// be bs-alice must connect from a process running as bs-alice. dialAs runs
// a copy of this test binary as the user; it connects and hands the
// connected socket back over a socketpair (SCM_RIGHTS). The kernel keeps
// the connecting process's credentials on the socket, so the server sees
// the user, and the test drives the connection in-process.

const dialerEnv = "BS_SERVER_TEST_DIAL"

// dialerMain is the child side; it runs from TestMain.
func dialerMain(path string) {
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

var dialerBin string

// installDialer copies the test binary where the test users can run it
// (go test's own directory is 0700).
func installDialer() (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "bs-dialer-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755)
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		return nil, err
	}
	dialerBin = filepath.Join(dir, "dialer")
	if err := os.WriteFile(dialerBin, self, 0o755); err != nil {
		return nil, err
	}
	return func() { os.RemoveAll(dir) }, nil
}

func dialAs(t *testing.T, u testenv.User, path string) *net.UnixConn {
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
	cmd := exec.Command(dialerBin)
	cmd.Env = []string{dialerEnv + "=" + path}
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: groups}}
	err = cmd.Run()
	theirs.Close()
	if err != nil {
		t.Fatalf("dial as %s: %v", u.Name, err)
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
