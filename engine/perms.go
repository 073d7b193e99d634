package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrUnsafePolicy: an operator policy file, its directory or an ancestor
// could be changed by someone other than root (or the daemon's own user),
// who could then decide every build on the host.
var ErrUnsafePolicy = errors.New("policy could be changed by another user")

// checkPolicyPerms applies sshd's StrictModes to an operator policy: the
// directory, every ancestor up to / and every file loaded from it must be
// owned by root or the daemon's user and not writable by group or others
// (a root-owned sticky directory such as /tmp excepted, for ancestors).
func checkPolicyPerms(dir string, files []string) error {
	euid := os.Geteuid()
	check := func(p string, ancestor bool) error {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("policy %s: %w", p, err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("policy %s: no owner information", p)
		}
		owner := int(sys.Uid)
		if owner != 0 && owner != euid {
			return fmt.Errorf("%w: %s is owned by uid %d", ErrUnsafePolicy, p, owner)
		}
		mode := st.Mode()
		if mode.Perm()&0o022 != 0 && !(ancestor && st.IsDir() && mode&fs.ModeSticky != 0 && owner == 0) {
			return fmt.Errorf("%w: %s is writable by group or others (mode %v)", ErrUnsafePolicy, p, mode.Perm())
		}
		return nil
	}
	for _, f := range files {
		if err := check(f, false); err != nil {
			return err
		}
	}
	if err := check(dir, false); err != nil {
		return err
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if err := check(p, true); err != nil {
			return err
		}
		if p == "/" {
			return nil
		}
	}
}
