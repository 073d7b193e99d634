// Package peercred reads who is on the other end of a Unix socket, as the
// kernel reports it (SO_PEERCRED and SO_PEERGROUPS). It owns that one
// syscall and nothing else: it does not look accounts up or decide anything.
//
// It reads through SyscallConn().Control, never conn.File(): File() dups the
// descriptor into blocking mode, which silently disables the deadlines the
// server relies on.
package peercred

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Cred is the peer's identity at connect time. Groups are the peer's
// supplementary groups (SO_PEERGROUPS); they may be empty.
type Cred struct {
	UID    int
	GID    int
	PID    int
	Groups []int
}

// ErrNoGroups is what peerGroups reports when the kernel does not support
// SO_PEERGROUPS (before Linux 4.13). Get then returns the peer with no
// supplementary groups rather than failing: fewer groups can only mean a
// build with less access, never more.
var ErrNoGroups = errors.New("SO_PEERGROUPS not supported")

// Get returns the credentials of the peer of conn.
func Get(conn *net.UnixConn) (Cred, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("peercred: syscall conn: %w", err)
	}
	var (
		cred    Cred
		credErr error
		grpErr  error
	)
	ctlErr := raw.Control(func(fd uintptr) {
		uc, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			credErr = os.NewSyscallError("getsockopt SO_PEERCRED", err)
			return
		}
		cred = Cred{UID: int(uc.Uid), GID: int(uc.Gid), PID: int(uc.Pid)}
		cred.Groups, grpErr = peerGroups(int(fd))
	})
	if ctlErr != nil {
		return Cred{}, fmt.Errorf("peercred: control: %w", ctlErr)
	}
	if credErr != nil {
		return Cred{}, fmt.Errorf("peercred: %w", credErr)
	}
	if errors.Is(grpErr, ErrNoGroups) {
		cred.Groups = []int{}
		grpErr = nil
	}
	if grpErr != nil {
		return Cred{}, fmt.Errorf("peercred: %w", grpErr)
	}
	return cred, nil
}

// peerGroups reads SO_PEERGROUPS, growing the buffer when the kernel says
// it is too small (ERANGE reports the needed size in the length).
func peerGroups(fd int) ([]int, error) {
	n := 64
	for range 4 {
		buf := make([]uint32, n)
		size, err := getsockoptGroups(fd, buf)
		if err == unix.ERANGE && size > len(buf)*4 {
			n = size/4 + 1
			continue
		}
		if err == unix.ENOPROTOOPT {
			return nil, fmt.Errorf("getsockopt: %w", ErrNoGroups)
		}
		if err != nil {
			return nil, os.NewSyscallError("getsockopt SO_PEERGROUPS", err)
		}
		groups := make([]int, 0, size/4)
		for _, g := range buf[:size/4] {
			groups = append(groups, int(g))
		}
		return groups, nil
	}
	return nil, os.NewSyscallError("getsockopt SO_PEERGROUPS", unix.ERANGE)
}
