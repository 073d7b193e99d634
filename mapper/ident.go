package mapper

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// asCaller runs fn with the caller's file-system identity, so that what the
// resolution learns is exactly what the caller could learn by looking
// themselves (issue "Caller's view only").
//
// As root it runs fn on a fresh goroutine locked to its OS thread, sets that
// thread's supplementary groups, fsgid and fsuid with raw per-thread
// syscalls (the libc and Go wrappers change every thread), and lets the
// goroutine exit while still locked, so the Go runtime destroys the tainted
// thread instead of reusing it. Setting a non-zero fsuid also drops the
// thread's file capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH...), so
// root's bypass of permission checks is gone for the walk.
//
// Not as root (development mode), fn runs as the daemon itself.
//
// When ctx ends first (a hung FUSE lookup, say), asCaller returns ctx's
// error and the walk is abandoned on its own thread.
func asCaller(ctx context.Context, c Caller, fn func()) error {
	if os.Geteuid() != 0 || c.UID == 0 {
		// Not root: we see no more than ourselves. A root caller sees
		// everything anyway (and the policy refuses root callers).
		done := make(chan struct{})
		go func() { defer close(done); fn() }()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("resolve paths: %w", ctx.Err())
		}
	}
	if c.UID < 0 || c.GID < 0 {
		return fmt.Errorf("resolve paths as uid %d gid %d: invalid identity", c.UID, c.GID)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread must die with this goroutine.
		if err := setThreadFSIdentity(c); err != nil {
			errc <- err
			return
		}
		fn()
		errc <- nil
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return fmt.Errorf("resolve paths: %w", ctx.Err())
	}
}

func setThreadFSIdentity(c Caller) error {
	groups := make([]uint32, 0, len(c.Groups))
	for _, g := range c.Groups {
		if g < 0 {
			return fmt.Errorf("set groups: invalid gid %d", g)
		}
		groups = append(groups, uint32(g))
	}
	var ptr unsafe.Pointer
	if len(groups) > 0 {
		ptr = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(ptr), 0); e != 0 {
		return os.NewSyscallError("setgroups", e)
	}
	// setfsgid/setfsuid return the previous id and never fail loudly: set,
	// then read back with an invalid id (-1 changes nothing) to verify.
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(c.GID), 0, 0)
	if got, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, ^uintptr(0), 0, 0); int(uint32(got)) != c.GID {
		return os.NewSyscallError("setfsgid", unix.EPERM)
	}
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(c.UID), 0, 0)
	if got, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0); int(uint32(got)) != c.UID {
		return os.NewSyscallError("setfsuid", unix.EPERM)
	}
	return nil
}
