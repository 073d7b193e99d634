package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/build-service/build-service/internal/strictdir"
)

// ErrNotSocket is returned when the socket path exists and is not a socket:
// the daemon never deletes a file it did not create.
var ErrNotSocket = errors.New("exists and is not a socket")

// ErrInUse is returned when another process answers on the socket path.
var ErrInUse = errors.New("another process is listening on it")

// ErrNoGroup is returned when service.socket_group names no host group.
var ErrNoGroup = errors.New("group does not exist")

// SocketSpec is where and how to create the listening socket.
type SocketSpec struct {
	Path  string
	Group string      // "" = leave the daemon's group
	Mode  os.FileMode // applied after bind and chown
}

// ListenPath creates the socket at spec.Path: the parent directory is made
// (0755) when missing, a stale socket is removed, anything else at the path
// is refused; bind happens under umask 0177 so the socket is never briefly
// open to others, then group and mode are applied.
func ListenPath(spec SocketSpec) (*net.UnixListener, error) {
	if spec.Path == "" || !filepath.IsAbs(spec.Path) {
		return nil, fmt.Errorf("listen: socket path %q must be absolute", spec.Path)
	}
	gid := -1
	if spec.Group != "" {
		g, err := user.LookupGroup(spec.Group)
		if err != nil {
			var unknown user.UnknownGroupError
			if errors.As(err, &unknown) {
				return nil, fmt.Errorf("listen: service.socket_group %q: %w", spec.Group, ErrNoGroup)
			}
			return nil, fmt.Errorf("listen: look up service.socket_group %q: %w", spec.Group, err)
		}
		gid, err = strconv.Atoi(g.Gid)
		if err != nil {
			return nil, fmt.Errorf("listen: gid %q of group %q: %w", g.Gid, spec.Group, err)
		}
	}
	dir := filepath.Dir(spec.Path)
	// Whoever can write the socket's directory can put their own socket
	// in its place (and read every client's request), or swap it for a
	// symlink between bind and the chown/chmod below, which root would
	// then apply to the symlink's target (/etc/shadow, group-readable).
	if err := strictdir.Check(dir); err != nil {
		return nil, fmt.Errorf("listen: socket directory: %w", err)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("listen: create socket directory: %w", err)
		}
		if err := strictdir.Check(dir); err != nil {
			return nil, fmt.Errorf("listen: socket directory: %w", err)
		}
	}
	if err := removeStale(spec.Path); err != nil {
		return nil, err
	}

	old := syscall.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: spec.Path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if gid >= 0 {
		if err := os.Lchown(spec.Path, -1, gid); err != nil {
			l.Close()
			return nil, fmt.Errorf("listen: chown socket to group %q: %w", spec.Group, err)
		}
	}
	if fi, err := os.Lstat(spec.Path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		l.Close()
		return nil, fmt.Errorf("listen: %s is no longer the socket just bound: %w", spec.Path, ErrNotSocket)
	}
	if err := os.Chmod(spec.Path, spec.Mode.Perm()); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen: chmod socket %04o: %w", spec.Mode.Perm(), err)
	}
	return l, nil
}

// removeStale removes a socket nobody answers on. A path that is not a
// socket, or a socket someone answers on, is left alone and reported.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen: inspect %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listen: refusing to replace %s (%s): %w", path, fi.Mode().Type(), ErrNotSocket)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen: %s: %w", path, ErrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("listen: probe existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("listen: remove stale socket: %w", err)
	}
	return nil
}

// listenFDsStart is the first inherited descriptor (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// ListenActivated returns the socket systemd passed (LISTEN_PID/LISTEN_FDS),
// or ok=false when the process was not socket-activated. The variables are
// unset so that nothing started later inherits them.
func ListenActivated() (l *net.UnixListener, ok bool, err error) {
	pidStr, fdsStr := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	if fdsStr == "" {
		return nil, false, nil
	}
	defer func() {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}()
	if pid, err := strconv.Atoi(pidStr); err != nil || pid != os.Getpid() {
		// Meant for another process (e.g. our parent): not ours to use.
		return nil, false, nil
	}
	n, err := strconv.Atoi(fdsStr)
	if err != nil || n < 1 {
		return nil, false, fmt.Errorf("listen: LISTEN_FDS=%q: want a positive count", fdsStr)
	}
	if n != 1 {
		return nil, false, fmt.Errorf("listen: LISTEN_FDS=%d: want exactly one socket", n)
	}
	f := os.NewFile(listenFDsStart, "LISTEN_FDS")
	defer f.Close()
	fl, err := net.FileListener(f)
	if err != nil {
		return nil, false, fmt.Errorf("listen: inherited fd %d: %w", listenFDsStart, err)
	}
	ul, isUnix := fl.(*net.UnixListener)
	if !isUnix {
		fl.Close()
		return nil, false, fmt.Errorf("listen: inherited fd %d is a %T, want a unix stream socket", listenFDsStart, fl)
	}
	// The unit owns the file; a stop must not unlink it.
	ul.SetUnlinkOnClose(false)
	return ul, true, nil
}
