// Package strictdir applies sshd's StrictModes to a directory the root
// daemon writes into (its log directory, the decision log's directory):
// if another user could write the directory or one of its ancestors, or
// owns a symlink on the way, they could plant a symlink there and have
// root append to or create any file on the host.
package strictdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrUnsafe: another user could change what is written under the directory.
var ErrUnsafe = errors.New("another user could plant files or symlinks there")

// Check checks dir, which may not exist yet (then its deepest existing
// ancestor is checked, as the parent of what MkdirAll will create): no
// symlink on the way (in the path or any link's target) owned by anyone
// but root or the effective uid, and every existing directory of the real
// path, from dir up to /, owned by root or the effective uid and not
// writable by group or others, except a root-owned sticky ancestor (/tmp)
// and a root-owned ancestor only a system group (gid < 1000) may write
// (Ubuntu's /var/log, root:syslog 0775).
func Check(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	euid := os.Geteuid()
	ownerOK := func(st fs.FileInfo) (int, bool) {
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return -1, false
		}
		return int(sys.Uid), sys.Uid == 0 || int(sys.Uid) == euid
	}
	// Walk the path as the kernel would, checking who owns each symlink.
	todo := strings.Split(abs, "/")
	cur := "/"
	links := 0
	complete := true
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		p := filepath.Join(cur, c)
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			complete = false
			break
		}
		if err != nil {
			return err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = p
			continue
		}
		if owner, ok := ownerOK(st); !ok {
			return fmt.Errorf("%s: %w: %s is a symlink owned by uid %d", abs, ErrUnsafe, p, owner)
		}
		if links++; links > 40 {
			return fmt.Errorf("%s: %w", abs, syscall.ELOOP)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	// cur is now the real path of dir (complete) or of its deepest
	// existing ancestor.
	for p, first := cur, true; ; p, first = filepath.Dir(p), false {
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		owner, ok := ownerOK(st)
		if !ok {
			return fmt.Errorf("%s: %w: %s is owned by uid %d, not by root", abs, ErrUnsafe, p, owner)
		}
		ancestor := !(first && complete)
		perm := st.Mode().Perm()
		if ancestor && perm&0o002 == 0 && owner == 0 && systemGroup(st) {
			// Ubuntu's /var/log is root:syslog 0775: a system group
			// (gid below 1000, no user's own or team group) may write
			// an ancestor, as logrotate's "su root syslog" accepts.
			perm &^= 0o020
		}
		if perm&0o022 != 0 && !(ancestor && st.Mode()&fs.ModeSticky != 0 && owner == 0) {
			return fmt.Errorf("%s: %w: %s is writable by group or others (mode %v)", abs, ErrUnsafe, p, st.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
	}
}

// systemGroup reports whether st's group is a system group (gid < 1000,
// SYS_GID_MAX's usual default), never a person's or a team's.
func systemGroup(st fs.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Gid < 1000
}

// CheckFile checks a file the daemon trusts (its config): the directories
// on the way to it, through any symlink, pass Check, and the file itself
// is owned by root or the effective uid and not writable by group or
// others.
func CheckFile(p string) error {
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	if err := Check(filepath.Dir(abs)); err != nil {
		return err
	}
	st, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || (sys.Uid != 0 && int(sys.Uid) != os.Geteuid()) {
			return fmt.Errorf("%s: %w: it is a symlink another user owns", abs, ErrUnsafe)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return err
		}
		if real != abs {
			return CheckFile(real)
		}
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", abs)
	}
	if sys.Uid != 0 && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s: %w: it is owned by uid %d", abs, ErrUnsafe, sys.Uid)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s: %w: it is writable by group or others (mode %v)", abs, ErrUnsafe, st.Mode().Perm())
	}
	return nil
}
