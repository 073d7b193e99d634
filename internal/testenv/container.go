package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Container is a stand-in for an agent's container: a command run as a user
// in a private mount namespace, with host directories bind-mounted at
// container paths, host directories hidden behind an empty tmpfs, and a
// clean environment. It needs root (unshare, mount, setpriv).
//
// Mounts happen in this order: first every Hide, then every Bind. So a Bind
// may place a host directory inside a hidden one (a container-only tree),
// but a Bind's host side must not lie under a Hide. A Bind's container path
// must exist on the host or lie under a Hide: the helper never creates
// directories on the host's file system.
type Container struct {
	// User is the account the command runs as ("root" is allowed, for
	// tests of a root caller). Its uid, primary gid and home come from the
	// host account database.
	User string
	// Groups, when non-nil, is exactly the supplementary group list of the
	// process (empty: none), so a test can run a container process with
	// fewer (or other) groups than the account has. Nil means the account's
	// groups (initgroups).
	Groups []int
	Binds  []Bind
	Hides  []string
	// Cwd is the container path the command starts in ("" = "/"). The
	// change of directory happens as the user.
	Cwd string
	// Env adds NAME=VALUE entries to the clean environment (PATH, HOME,
	// USER, LOGNAME, LANG); a later entry for the same name wins.
	Env []string
	// Stdin is the command's standard input (nil: /dev/null).
	Stdin io.Reader
}

// Bind mounts the host directory Host at the container path Container.
type Bind struct {
	Host      string
	Container string
	ReadOnly  bool
}

// ContainerResult is how a command in a Container ended.
type ContainerResult struct {
	Code   int // exit status; 128+N when killed by signal N
	Stdout string
	Stderr string
}

// ErrContainerSetup means the stand-in container could not be set up (a
// mount, the identity change or the change of directory failed); the
// command itself never started.
var ErrContainerSetup = errors.New("container stand-in setup failed")

// ContainerCmd is a started or startable command inside a Container. Use
// its Cmd for Start/Process/signals, and Wait (not Cmd.Wait) to learn
// whether the setup succeeded.
type ContainerCmd struct {
	Cmd   *exec.Cmd
	ready *os.File // read end; the command's setup writes one byte once it is about to exec
	w     *os.File // write end, closed in the parent after Start
}

// The setup script runs as root inside the new mount namespace. Arguments
// arrive as positional parameters, never interpolated into the script, so
// paths with spaces or quotes are safe:
//
//	H <dir>...  --  B <host> <ctr> <ro> <mkdir>...  --  <setpriv args>... -- <argv>
//
// After the mounts it changes identity with setpriv and clears the
// environment with env -i; the user's shell then changes to the cwd, writes
// the ready byte on fd 3, closes it and execs the command.
const containerSetup = `
fail() { echo "testenv container: $*" >&2; exit 125; }
while [ "$1" != -- ]; do
  mount -t tmpfs -o mode=0755 testenv-hide "$1" || fail "hide $1"
  shift
done
shift
while [ "$1" != -- ]; do
  h=$1 c=$2 ro=$3 mk=$4; shift 4
  if [ "$mk" = 1 ]; then mkdir -p "$c" || fail "mkdir $c"; fi
  mount --bind "$h" "$c" || fail "bind $h at $c"
  if [ "$ro" = 1 ]; then mount -o remount,bind,ro "$c" || fail "read-only $c"; fi
done
shift
exec setpriv "$@"
`

// The user-side step, run by /bin/sh after setpriv and env -i: $0 is the
// cwd (the command sees PWD, as a container shell would set it). A failed cd exits without the ready byte, so Wait reports setup
// failure rather than a command exit code.
const containerEnter = `cd "$0" || exit 125; unset OLDPWD; printf r >&3; exec 3>&-; exec "$@"`

// Command prepares argv to run inside the container. It does not start it.
func (c Container) Command(ctx context.Context, argv ...string) (*ContainerCmd, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("container command: empty argv")
	}
	if c.User == "" {
		return nil, fmt.Errorf("container command: no user")
	}
	u, err := user.Lookup(c.User)
	if err != nil {
		return nil, fmt.Errorf("container command: look up %s: %w", c.User, err)
	}
	cwd := c.Cwd
	if cwd == "" {
		cwd = "/"
	}

	args := []string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", containerSetup, "testenv-container"}
	for _, h := range c.Hides {
		if !filepath.IsAbs(h) {
			return nil, fmt.Errorf("container command: hide %q is not absolute", h)
		}
		args = append(args, h)
	}
	args = append(args, "--")
	for _, b := range c.Binds {
		if !filepath.IsAbs(b.Host) || !filepath.IsAbs(b.Container) {
			return nil, fmt.Errorf("container command: bind %s:%s: paths must be absolute", b.Host, b.Container)
		}
		for _, h := range c.Hides {
			if within(b.Host, h) {
				return nil, fmt.Errorf("container command: bind source %s is under hidden %s", b.Host, h)
			}
		}
		mk := "0"
		if underAny(b.Container, c.Hides) {
			mk = "1"
		} else if _, err := os.Stat(b.Container); err != nil {
			return nil, fmt.Errorf("container command: mount point %s must exist or lie under a hidden directory: %w", b.Container, err)
		}
		ro := "0"
		if b.ReadOnly {
			ro = "1"
		}
		args = append(args, b.Host, b.Container, ro, mk)
	}
	args = append(args, "--")

	args = append(args, "--reuid="+u.Uid, "--regid="+u.Gid)
	switch {
	case c.Groups == nil:
		args = append(args, "--init-groups")
	case len(c.Groups) == 0:
		args = append(args, "--clear-groups")
	default:
		gs := make([]string, len(c.Groups))
		for i, g := range c.Groups {
			gs[i] = strconv.Itoa(g)
		}
		args = append(args, "--groups="+strings.Join(gs, ","))
	}
	args = append(args, "--", "env", "-i",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username, "LANG=C.UTF-8")
	for _, e := range c.Env {
		if !strings.Contains(e, "=") {
			return nil, fmt.Errorf("container command: env entry %q is not NAME=VALUE", e)
		}
		args = append(args, e)
	}
	args = append(args, "/bin/sh", "-c", containerEnter, cwd)
	args = append(args, argv...)

	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("container command: ready pipe: %w", err)
	}
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{w} // fd 3
	if c.Stdin != nil {
		cmd.Stdin = c.Stdin
	}
	return &ContainerCmd{Cmd: cmd, ready: r, w: w}, nil
}

// Start starts the command.
func (cc *ContainerCmd) Start() error {
	err := cc.Cmd.Start()
	cc.w.Close()
	if err != nil {
		cc.ready.Close()
		return fmt.Errorf("container command: start unshare: %w", err)
	}
	return nil
}

// Wait waits for the command and returns its exit code (128+N for a
// signal). The error wraps ErrContainerSetup when the command never
// started because the stand-in could not be set up.
func (cc *ContainerCmd) Wait() (int, error) {
	werr := cc.Cmd.Wait()
	var b [1]byte
	n, _ := cc.ready.Read(b[:])
	cc.ready.Close()
	code := cc.Cmd.ProcessState.ExitCode()
	if st, ok := exitSignal(cc.Cmd.ProcessState); ok {
		code = 128 + st
	}
	if n == 0 {
		return code, fmt.Errorf("%w (exit %d, %v)", ErrContainerSetup, code, werr)
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return code, fmt.Errorf("container command: wait: %w", werr)
	}
	return code, nil
}

// Run runs argv in the container and collects its output.
func (c Container) Run(ctx context.Context, argv ...string) (ContainerResult, error) {
	cc, err := c.Command(ctx, argv...)
	if err != nil {
		return ContainerResult{}, err
	}
	var stdout, stderr bytes.Buffer
	cc.Cmd.Stdout, cc.Cmd.Stderr = &stdout, &stderr
	if err := cc.Start(); err != nil {
		return ContainerResult{}, err
	}
	code, err := cc.Wait()
	res := ContainerResult{Code: code, Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		return res, fmt.Errorf("%w; stderr: %s", err, strings.TrimSpace(res.Stderr))
	}
	return res, nil
}

// RunInContainer is Run for tests: it needs root and fails the test when
// the stand-in cannot be set up. The command's own exit code is returned,
// not judged.
func RunInContainer(t testing.TB, ctx context.Context, c Container, argv ...string) ContainerResult {
	t.Helper()
	RequireRoot(t)
	res, err := c.Run(ctx, argv...)
	if err != nil {
		t.Fatalf("run %q in container as %s: %v", argv, c.User, err)
	}
	return res
}

// within reports whether p is dir or below it, by path components (never
// a string prefix: /a/bc is not within /a/b).
func within(p, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if within(p, d) {
			return true
		}
	}
	return false
}

func exitSignal(ps *os.ProcessState) (int, bool) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return int(ws.Signal()), true
}

// SharedTempDir returns a new root-owned directory, mode 0755, directly in
// the system temp dir, removed when the test ends. Unlike t.TempDir (0700
// directories), dropped users can traverse it, and each ancestor is root
// owned and not writable by others (/tmp is sticky), as the daemon's
// workspace ownership check demands.
func SharedTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bs-test-")
	if err != nil {
		t.Fatalf("shared temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("shared temp dir: %v", err)
	}
	return dir
}
