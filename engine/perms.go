package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/build-service/build-service/internal/strictdir"
)

// ErrUnsafePolicy: an operator policy file, its directory or an ancestor
// could be changed by someone other than root (or the daemon's own user),
// who could then decide every build on the host.
var ErrUnsafePolicy = errors.New("policy could be changed by another user")

// checkPolicyPerms applies sshd's StrictModes to an operator policy: every
// file loaded from it must be owned by root or the daemon's user and not
// writable by group or others, and the directory and every ancestor up to /
// must pass strictdir.Check (the rule the daemon holds its log, socket and
// config directories to).
func checkPolicyPerms(dir string, files []string) error {
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("policy %s: %w", f, err)
		}
		if err := checkOwnerMode(f, st); err != nil {
			return err
		}
	}
	return checkPolicyDir(dir)
}

// checkPolicyDir is strictdir.Check with the engine's sentinel: dir (or, if
// it does not exist yet, its deepest existing ancestor) and everything
// above it are out of other users' reach, symlinks on the way included.
func checkPolicyDir(dir string) error {
	if err := strictdir.Check(dir); err != nil {
		if errors.Is(err, strictdir.ErrUnsafe) {
			return fmt.Errorf("%w: %w", ErrUnsafePolicy, err)
		}
		return fmt.Errorf("policy %s: %w", dir, err)
	}
	return nil
}

// checkOwnerMode is the rule for a policy file or a directory inside the
// policy directory: owned by root or the daemon's user, not writable by
// group or others.
func checkOwnerMode(p string, st fs.FileInfo) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("policy %s: no owner information", p)
	}
	if owner := int(sys.Uid); owner != 0 && owner != os.Geteuid() {
		return fmt.Errorf("%w: %s is owned by uid %d", ErrUnsafePolicy, p, owner)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s is writable by group or others (mode %v)", ErrUnsafePolicy, p, st.Mode().Perm())
	}
	return nil
}

// checkPolicyEntry checks a directory inside the policy directory (not
// followed: the walk does not follow links either).
func checkPolicyEntry(p string) error {
	st, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("policy %s: %w", p, err)
	}
	return checkOwnerMode(p, st)
}

// readPolicyFile reads an operator policy file after checking the owner
// and mode of the file it opened (fstat): checking by name after reading
// left a window in which a symlink could be flipped between a file someone
// else wrote (read) and a root-owned one (checked).
func readPolicyFile(p string) ([]byte, error) {
	// O_NONBLOCK: a FIFO must not hang the daemon (it is refused below).
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("policy %s: not a regular file", p)
	}
	if err := checkOwnerMode(p, st); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, 64<<20))
}
