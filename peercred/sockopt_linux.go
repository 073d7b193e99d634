package peercred

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// getsockoptGroups is getsockopt(SO_PEERGROUPS) into buf; x/sys has no
// typed wrapper for it. It returns the byte length the kernel reported.
func getsockoptGroups(fd int, buf []uint32) (int, error) {
	size := uint32(len(buf) * 4)
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
		uintptr(p), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return int(size), errno
	}
	return int(size), nil
}
