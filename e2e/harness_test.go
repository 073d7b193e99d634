package e2e

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/build-service/build-service/internal/testenv"
)

var (
	repoRoot string

	buildOnce sync.Once
	binDir    string // build-service, build-cli, make (the wrapper); 0755 so dropped users can exec them
	buildErr  error
)

func TestMain(m *testing.M) {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: repo root:", err)
		os.Exit(2)
	}
	repoRoot = root
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds cmd/build-service and cmd/build-cli once per test binary
// (into a world-traversable directory: test temp dirs are 0700 root, and
// the users must exec build-cli and the daemon's exec helper) and installs
// scripts/make-wrapper.sh there as make.
func binaries(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	buildOnce.Do(func() {
		start := time.Now()
		binDir, buildErr = buildBinaries()
		if buildErr == nil {
			fmt.Fprintf(os.Stderr, "e2e: built binaries in %v\n", time.Since(start).Round(100*time.Millisecond))
		}
	})
	if buildErr != nil {
		t.Fatalf("build binaries: %v", buildErr)
	}
	return binDir
}

func buildBinaries() (string, error) {
	dir, err := os.MkdirTemp("", "bs-e2e-bin-")
	if err != nil {
		return "", fmt.Errorf("bin dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return dir, fmt.Errorf("bin dir: %w", err)
	}
	builds := []struct {
		out, pkg string
		env      []string
	}{
		{"build-service", "./cmd/build-service", nil},
		{"build-cli", "./cmd/build-cli", []string{"CGO_ENABLED=0"}},
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return dir, fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	wrapper, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "make-wrapper.sh"))
	if err != nil {
		return dir, fmt.Errorf("make wrapper: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "make"), wrapper, 0o755); err != nil {
		return dir, fmt.Errorf("install make wrapper: %w", err)
	}
	return dir, nil
}

// world is one daemon with its config, the host-only library, the users'
// host workspaces, and the container-only tree. Layout under base (root
// owned, 0755 all the way up, as the daemon's ownership check demands):
//
//	opt/proprietary/{include,lib}   host-only library (hidden in containers)
//	ws/<user>/Makefile              root's probe makefile, for -C ../.. from workspace/probe
//	ws/<user>/workspace             host workspace, owned by the user: hello/ (the example),
//	                                probe/ (probe makefile; escape -> base/outside), markers/
//	run/build.sock                  the daemon's socket
//	outside/                        a directory outside every workspace
//	ctr/                            hidden; in containers: ctr/bin (binaries), ctr/run (socket dir)
//	daemon.log, log/                the daemon's console output, its log directory
type world struct {
	bin       string
	base      string
	prop      string
	sock      string
	ctr       string
	daemonLog string
	config    string
}

const socketName = "build.sock"

// denyGroups is the daemon's deny list in these tests: the defaults plus
// bs-denied, of which bs-alice is a member.
var denyGroups = []string{"root", "sudo", "wheel", "adm", "docker", "lxd", "libvirt", "disk", testenv.GroupDenied}

func newWorld(t *testing.T, users ...testenv.User) *world {
	t.Helper()
	w := &world{bin: binaries(t), base: testenv.SharedTempDir(t)}
	w.prop = filepath.Join(w.base, "opt", "proprietary")
	w.sock = filepath.Join(w.base, "run", socketName)
	w.ctr = filepath.Join(w.base, "ctr")
	w.daemonLog = filepath.Join(w.base, "daemon.log")
	for _, d := range []string{"opt", "ws", "run", "outside", "ctr", "log"} {
		mkdir(t, filepath.Join(w.base, d), 0o755)
	}
	w.installProprietary(t)
	for _, u := range users {
		w.makeWorkspace(t, u)
	}
	writeFile(t, filepath.Join(w.base, "outside", "Makefile"), probeMakefile, 0o644)
	w.writeConfig(t)
	w.startDaemon(t)
	return w
}

// probeMakefile creates $(MARKER) when make runs it: denial tests pass an
// absolute host path and check it never appears, and a control run with
// the real make proves the same argv would have created it.
//
// Its env target prints the build's environment.
const probeMakefile = "marker:\n\ttouch \"$(MARKER)\"\n\nenv:\n\t@env | LC_ALL=C sort\n"

func (w *world) installProprietary(t *testing.T) {
	t.Helper()
	src := filepath.Join(w.base, "src-proprietary")
	copyTree(t, filepath.Join(repoRoot, "examples", "proprietary"), src, 0, 0)
	cmd := exec.Command("/usr/bin/make", "-s", "-C", src, "install", "PREFIX="+w.prop)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install the proprietary library: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(w.prop, "lib", "libsecret.so")); err != nil {
		t.Fatalf("proprietary library not installed: %v", err)
	}
}

// hostWorkspace is the user's host workspace (host_template).
func (w *world) hostWorkspace(u testenv.User) string {
	return filepath.Join(w.base, "ws", u.Name, "workspace")
}

// containerHome is where the workspace appears in the container
// (container_template).
func containerHome(u testenv.User) string { return "/home/" + u.Name }

func (w *world) makeWorkspace(t *testing.T, u testenv.User) {
	t.Helper()
	mkdir(t, filepath.Join(w.base, "ws", u.Name), 0o755)
	ws := w.hostWorkspace(u)
	mkdir(t, ws, 0o755)
	copyTree(t, filepath.Join(repoRoot, "examples", "hello"), filepath.Join(ws, "hello"), u.UID, u.GID)
	mkdir(t, filepath.Join(ws, "probe"), 0o755)
	writeFile(t, filepath.Join(ws, "probe", "Makefile"), probeMakefile, 0o644)
	mkdir(t, filepath.Join(ws, "markers"), 0o755)
	// A symlink out of the workspace, to a directory with a makefile.
	if err := os.Symlink(filepath.Join(w.base, "outside"), filepath.Join(ws, "probe", "escape")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ws, filepath.Join(ws, "probe"), filepath.Join(ws, "probe", "Makefile"), filepath.Join(ws, "probe", "escape"), filepath.Join(ws, "markers")} {
		if err := os.Lchown(p, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	// A makefile one level above the workspace (root-owned, in a
	// root-owned directory) for "-C ../.." from workspace/probe.
	writeFile(t, filepath.Join(w.base, "ws", u.Name, "Makefile"), probeMakefile, 0o644)
}

func (w *world) writeConfig(t *testing.T) {
	t.Helper()
	quote := func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = fmt.Sprintf("%q", s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	cfg := fmt.Sprintf(`schema_version = "1"

[service]
socket_path = %q
socket_group = %q
socket_mode = "0660"
shutdown_grace_sec = 5

[build]
workspace_root = %q

[build.path_mapping]
container_template = "/home/{user}"
host_template = "{workspace_root}/{user}/workspace"

[build.commands]
make = "/usr/bin/make"

[build.timeouts]
default_sec = 60
max_sec = 120
kill_grace_sec = 1

[build.environment]
path = "/usr/local/bin:/usr/bin:/bin"

[build.identity]
deny_groups = %s

[logging]
level = "debug"
directory = %q
console = true
`, w.sock, testenv.GroupShared, filepath.Join(w.base, "ws"), quote(denyGroups), filepath.Join(w.base, "log"))
	w.config = filepath.Join(w.base, "build-service.toml")
	writeFile(t, w.config, cfg, 0o644)
}

func (w *world) startDaemon(t *testing.T) {
	t.Helper()
	logf, err := os.Create(w.daemonLog)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(w.bin, "build-service"), "--config", w.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start build-service: %v", err)
	}
	logf.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (%s):\n%s", w.daemonLog, tail(readFile(w.daemonLog), 60))
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("build-service did not stop within 15 s of SIGTERM; killing it")
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if fi, err := os.Stat(w.sock); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			// The daemon refuses a world-writable socket mode, and rightly;
			// but these tests run container processes with group sets
			// that may lack the socket group (bs-team), to check what the
			// build gets. Who may connect is the server's own tests' job.
			if err := os.Chmod(w.sock, 0o666); err != nil {
				t.Fatalf("open the socket to every test user: %v", err)
			}
			return
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("build-service exited before listening: %v\n%s", err, readFile(w.daemonLog))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("build-service did not create %s within 20 s\n%s", w.sock, readFile(w.daemonLog))
		}
	}
}

// container returns the stand-in container of user u: u's host workspace
// at /home/<u>, the binaries and the socket's directory in a
// container-only tree, the host-only library hidden. groups nil means the
// account's groups.
func (w *world) container(u testenv.User, groups []int, cwd string) testenv.Container {
	ctrBin := filepath.Join(w.ctr, "bin")
	ctrRun := filepath.Join(w.ctr, "run")
	return testenv.Container{
		User:   u.Name,
		Groups: groups,
		Hides:  []string{filepath.Dir(w.prop), w.ctr},
		Binds: []testenv.Bind{
			{Host: w.hostWorkspace(u), Container: containerHome(u)},
			{Host: w.bin, Container: ctrBin, ReadOnly: true},
			{Host: filepath.Dir(w.sock), Container: ctrRun},
		},
		Cwd: cwd,
		Env: []string{
			"PATH=" + ctrBin + ":/usr/local/bin:/usr/bin:/bin",
			"BUILD_SERVICE_SOCKET=" + filepath.Join(ctrRun, socketName),
		},
	}
}

// run runs argv in c, with a generous deadline.
func run(t *testing.T, c testenv.Container, argv ...string) testenv.ContainerResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return testenv.RunInContainer(t, ctx, c, argv...)
}

func mkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // the umask
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", p, err)
	}
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildOutputs are names the examples' builds create; a source tree copied
// from a checkout where someone ran make must not bring them along.
func isBuildOutput(name string) bool {
	switch filepath.Ext(name) {
	case ".o", ".a":
		return true
	}
	return name == "hello" || strings.HasPrefix(name, "libsecret.so")
}

// copyTree copies a source directory (regular files and directories) and
// gives every copy to uid:gid.
func copyTree(t *testing.T, src, dst string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, 0o755); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if isBuildOutput(d.Name()) {
				return nil
			}
			if err := copyFile(p, target); err != nil {
				return err
			}
		default:
			return nil
		}
		return os.Lchown(target, uid, gid)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// hasLine reports whether got contains want as a line.
func hasLine(got, want string) bool {
	for _, l := range strings.Split(got, "\n") {
		if strings.TrimRight(l, "\r") == want {
			return true
		}
	}
	return false
}
