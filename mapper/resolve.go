package mapper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks is the kernel's limit for one lookup (MAXSYMLINKS).
const maxSymlinks = 40

// resolved is one path resolved the way the kernel would resolve it for
// open(2)/chdir(2), without ever opening anything for reading.
type resolved struct {
	Path   string // real path; through the longest existing prefix when !Exists
	Exists bool
	IsDir  bool
	Mode   uint32 // st_mode when Exists
	// Err is set when the walk could not go on for a reason other than a
	// missing component (permission denied, loop): the path is then not
	// resolvable and Path is "".
	Err error
}

// errText is the short reason a fact carries for an unresolvable path. It
// names the errno only: the caller could learn that much by trying.
func errText(err error) string {
	var en unix.Errno
	if errors.As(err, &en) {
		return en.Error()
	}
	return err.Error()
}

// maxLookups bounds the components one request may walk in all. A request
// of 64 KiB can name thousands of paths, each through 40 symlinks of 4 KiB
// targets, or thousands of MAKEFILES names searched in thousands of -I
// directories: minutes of root CPU without a bound. An honest request
// needs a few thousand lookups. A variable so tests can lift it.
var maxLookups = 1 << 20

// errTooManyLookups is the fact a path gets once the request's budget is
// spent (the policy denies with it).
var errTooManyLookups = fmt.Errorf("too many path lookups for one request (more than %d): name fewer paths", maxLookups)

// walk is one request's resolution: it ends with ctx (a walk abandoned by
// asCaller must not go on burning a thread and a CPU as root) and after
// maxLookups steps.
type walk struct {
	ctx  context.Context
	left int
}

func newWalk(ctx context.Context) *walk { return &walk{ctx: ctx, left: maxLookups} }

func (w *walk) step() error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.left <= 0 {
		return errTooManyLookups
	}
	w.left--
	return nil
}

// resolvePath resolves an absolute host path component by component:
// O_PATH|O_NOFOLLOW opens (which never read, and do not block on FIFOs),
// readlinkat for symlinks, ".." taken physically, at most maxSymlinks links,
// each component a step of wk.
func resolvePath(wk *walk, p string) resolved {
	if !filepath.IsAbs(p) {
		return resolved{Err: fmt.Errorf("resolve %q: %w", p, unix.EINVAL)}
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return resolved{Err: os.NewSyscallError("open /", err)}
	}
	defer func() { unix.Close(fd) }()
	cur := "/"
	todo := splitComponents(p)
	links := 0
	for len(todo) > 0 {
		if err := wk.step(); err != nil {
			return resolved{Err: err}
		}
		c := todo[0]
		todo = todo[1:]
		if c == ".." {
			if cur == "/" {
				continue
			}
			nfd, err := unix.Openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return resolved{Err: os.NewSyscallError("openat ..", err)}
			}
			unix.Close(fd)
			fd = nfd
			cur = filepath.Dir(cur)
			continue
		}
		nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if err == unix.ENOENT || err == unix.ENOTDIR {
				return missing(cur, c, todo)
			}
			return resolved{Err: os.NewSyscallError("openat", err)}
		}
		var st unix.Stat_t
		if err := unix.Fstat(nfd, &st); err != nil {
			unix.Close(nfd)
			return resolved{Err: os.NewSyscallError("fstat", err)}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			links++
			if links > maxSymlinks {
				unix.Close(nfd)
				return resolved{Err: os.NewSyscallError("readlinkat", unix.ELOOP)}
			}
			target, err := readlinkFD(nfd)
			unix.Close(nfd)
			if err != nil {
				return resolved{Err: err}
			}
			if target == "" {
				return missing(cur, c, todo)
			}
			if strings.HasPrefix(target, "/") {
				rfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return resolved{Err: os.NewSyscallError("open /", err)}
				}
				unix.Close(fd)
				fd, cur = rfd, "/"
			}
			todo = append(splitComponents(target), todo...)
		case unix.S_IFDIR:
			unix.Close(fd)
			fd = nfd
			cur = filepath.Join(cur, c)
		default:
			if len(todo) > 0 {
				// open(2) would fail with ENOTDIR: nothing exists past here.
				unix.Close(nfd)
				return missing(cur, c, todo)
			}
			unix.Close(fd)
			fd = nfd
			cur = filepath.Join(cur, c)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return resolved{Err: os.NewSyscallError("fstat", err)}
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if !isDir && trailingDir(p) {
		// "file/" or "file/.": the kernel fails with ENOTDIR.
		return resolved{Path: cur}
	}
	return resolved{Path: cur, Exists: true, IsDir: isDir, Mode: st.Mode}
}

// trailingDir reports whether a path's spelling demands a directory at its
// end ("x/", "x/.", "x/..").
func trailingDir(p string) bool {
	return strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") || p == "." || p == ".."
}

// missing ends a walk at a component that does not exist: the rest is
// appended lexically (make would fail on it anyway, so ".." in a missing
// tail cannot reach anything real).
func missing(cur, c string, todo []string) resolved {
	return resolved{Path: filepath.Clean(filepath.Join(append([]string{cur, c}, todo...)...))}
}

func readlinkFD(fd int) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", os.NewSyscallError("readlinkat", err)
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= 1<<16 {
			return "", os.NewSyscallError("readlinkat", unix.ENAMETOOLONG)
		}
		buf = make([]byte, 2*len(buf))
	}
}

// splitComponents splits a path into components, dropping empty ones and
// "." (no-ops for the kernel) but keeping "..".
func splitComponents(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// within reports whether p is root or below it, by path components.
func within(p, root string) bool {
	if p == "" || root == "" {
		return false
	}
	if root == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == root || strings.HasPrefix(p, root+"/")
}

// checkStrict is the StrictModes walk over a real (resolved) path: every
// directory from / down to dir must be owned by root or uid and writable by
// nobody else, except root-owned sticky directories such as /tmp. It uses
// O_PATH opens and fstat only, and does not follow symlinks (dir is real).
func checkStrict(dir string, uid int) (bool, string) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, "cannot open /: " + errText(err)
	}
	defer func() { unix.Close(fd) }()
	cur := "/"
	comps := splitComponents(dir)
	for i := 0; ; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return false, fmt.Sprintf("cannot stat %s: %s", cur, errText(err))
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return false, fmt.Sprintf("%s is not a directory", cur)
		}
		last := i == len(comps)
		if st.Uid != 0 && int(st.Uid) != uid {
			return false, fmt.Sprintf("%s is owned by uid %d, not by root or you", cur, st.Uid)
		}
		if st.Mode&0o022 != 0 {
			sticky := st.Mode&unix.S_ISVTX != 0 && st.Uid == 0 && !last
			if !sticky {
				return false, fmt.Sprintf("%s is writable by group or others (mode %04o)", cur, st.Mode&0o7777)
			}
		}
		if last {
			return true, ""
		}
		nfd, err := unix.Openat(fd, comps[i], unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, fmt.Sprintf("cannot open %s: %s", filepath.Join(cur, comps[i]), errText(err))
		}
		unix.Close(fd)
		fd = nfd
		cur = filepath.Join(cur, comps[i])
	}
}

// checkSymlinkOwners checks the workspace path as the config spells it:
// checkStrict judged only the real path, and a symlink on the way there
// decides where that is. Like the kernel's protected_symlinks, a symlink
// counts only when root or the caller owns it, so nobody can point a
// caller's workspace (say, under a sticky /tmp) somewhere else. Each prefix
// is lstat'ed: no file is opened.
func checkSymlinkOwners(path string, uid int) (bool, string) {
	cur := "/"
	for _, c := range splitComponents(path) {
		cur = filepath.Join(cur, c)
		var st unix.Stat_t
		if err := unix.Lstat(cur, &st); err != nil {
			return false, fmt.Sprintf("cannot stat %s: %s", cur, errText(err))
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK && st.Uid != 0 && int(st.Uid) != uid {
			return false, fmt.Sprintf("%s is a symlink owned by uid %d, not by root or you", cur, st.Uid)
		}
	}
	return true, ""
}
