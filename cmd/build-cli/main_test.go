package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/build-service/build-service/protocol"
)

// binary is build-cli built the way it ships: CGO_ENABLED=0.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "build-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "build-cli")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build build-cli: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build-cli ships into every container image: linking the policy engine or
// the daemon's logger would bloat it and widen what runs there.
func TestDependencyBoundaryKeepsOPAAndZerologOut(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{
		"github.com/build-service/build-service/cli":           true,
		"github.com/build-service/build-service/protocol":      true,
		"github.com/build-service/build-service/cmd/build-cli": true,
	}
	var deps []string
	for _, p := range strings.Fields(string(out)) {
		deps = append(deps, p)
		if strings.HasPrefix(p, "github.com/open-policy-agent/opa") || strings.HasPrefix(p, "github.com/rs/zerolog") {
			t.Errorf("build-cli links %s", p)
		} else if !allowed[p] {
			t.Errorf("build-cli links %s, which is not on this test's list of non-standard packages it may use", p)
		}
	}
	if len(deps) < 2 {
		t.Fatalf("go list found only %q: the check is not looking at build-cli", deps)
	}
}

func TestBuiltWithoutCgoItIsAStaticELF(t *testing.T) {
	f, err := elf.Open(binary)
	if err != nil {
		t.Fatalf("open %s: %v", binary, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("build-cli has a PT_INTERP segment: it needs a dynamic loader")
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Fatalf("build-cli needs shared libraries %v", libs)
	}
}

// daemon is a one-connection stand-in for build-service on a real socket.
type daemon struct {
	path string
	ln   net.Listener
}

func startDaemon(t *testing.T, script func(c net.Conn, r *bufio.Reader, req *protocol.Request)) *daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "build.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		line, err := protocol.ReadLine(r, protocol.MaxRequestBytes)
		if err != nil {
			t.Errorf("daemon: read request: %v", err)
			return
		}
		req, err := protocol.DecodeRequest(line)
		if err != nil {
			t.Errorf("daemon: %v", err)
			return
		}
		script(c, r, req)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return &daemon{path: path, ln: ln}
}

func send(t *testing.T, c net.Conn, evs ...protocol.Event) {
	for _, ev := range evs {
		if err := protocol.WriteEvent(c, ev); err != nil {
			t.Errorf("daemon: %v", err)
		}
	}
}

// command runs the built binary as a user would, in dir, with only env.
func command(dir string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run build-cli: %v", err)
	}
	return 0
}

func TestRunsLikeAUserWouldTypeIt(t *testing.T) {
	work := t.TempDir()
	got := make(chan *protocol.Request, 1)
	d := startDaemon(t, func(c net.Conn, _ *bufio.Reader, req *protocol.Request) {
		got <- req
		send(t, c, protocol.OutputEvent(protocol.EventStdout, "cc -c a.c\n"),
			protocol.OutputEvent(protocol.EventStderr, "make: *** [all] Error 1\n"),
			protocol.ExitEvent(2, false))
	})
	cmd, stdout, stderr := command(work, []string{
		"BUILD_SERVICE_SOCKET=" + d.path, "CFLAGS=-O2", "GITHUB_TOKEN=ghp_secret", "PATH=/usr/bin:/bin",
	}, "make", "-C", "sub dir", "-j4", "all")
	code := exitCode(t, cmd.Run())
	if code != 2 || stdout.String() != "cc -c a.c\n" || stderr.String() != "make: *** [all] Error 1\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	req := <-got
	if req.Cwd != work || req.Command != "make" || strings.Join(req.Args, "|") != "-C|sub dir|-j4|all" {
		t.Fatalf("request %+v", req)
	}
	if len(req.Env) != 1 || req.Env["CFLAGS"] != "-O2" {
		t.Fatalf("env sent: %v", req.Env)
	}
}

func TestUnreachableServiceExits125(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	cmd, _, stderr := command(t.TempDir(), []string{"BUILD_SERVICE_SOCKET=" + sock}, "make")
	code := exitCode(t, cmd.Run())
	want := "build-cli: build-service unreachable at " + sock + ": connect: no such file or directory\n"
	if code != 125 || stderr.String() != want {
		t.Fatalf("exit %d stderr %q, want 125 %q", code, stderr, want)
	}
}

func TestCtrlCIsForwardedAndReportedAs130(t *testing.T) {
	started := make(chan struct{})
	control := make(chan string, 1)
	d := startDaemon(t, func(c net.Conn, r *bufio.Reader, req *protocol.Request) {
		send(t, c, protocol.OutputEvent(protocol.EventStdout, "building\n"))
		close(started)
		line, err := protocol.ReadLine(r, protocol.MaxControlBytes)
		if err != nil {
			control <- "read: " + err.Error()
			return
		}
		ctl, err := protocol.DecodeControl(line)
		if err != nil {
			control <- err.Error()
			return
		}
		control <- ctl.Signal
		ev := protocol.ExitEvent(130, false)
		ev.Signal = "INT"
		send(t, c, ev)
	})
	cmd, stdout, stderr := command(t.TempDir(), []string{"BUILD_SERVICE_SOCKET=" + d.path}, "make", "all")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("build-cli did not send its request within 15 s")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if got := <-control; got != "INT" {
		t.Fatalf("daemon got %q, want the control line for INT", got)
	}
	code := exitCode(t, cmd.Wait())
	if code != 130 || stdout.String() != "building\n" || stderr.String() != "" {
		t.Fatalf("exit %d stdout %q stderr %q, want 130", code, stdout, stderr)
	}
}

func TestVersionComesFromBuildInfo(t *testing.T) {
	cmd, stdout, _ := command(t.TempDir(), nil, "--version")
	if code := exitCode(t, cmd.Run()); code != 0 {
		t.Fatalf("exit %d", code)
	}
	f := strings.Fields(stdout.String())
	if len(f) != 3 || f[0] != "build-cli" || !strings.HasPrefix(f[2], "go1.") {
		t.Fatalf("--version printed %q", stdout)
	}
}

// make's $(CURDIR) is the physical directory; a $PWD through a symlink
// (which may point at a container-only absolute path) must not be sent.
func TestSendsThePhysicalDirectoryNotPWD(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	d := startDaemon(t, func(c net.Conn, _ *bufio.Reader, req *protocol.Request) {
		got <- req.Cwd
		send(t, c, protocol.ExitEvent(0, false))
	})
	cmd, _, stderr := command(link, []string{"BUILD_SERVICE_SOCKET=" + d.path, "PWD=" + link}, "make")
	if code := exitCode(t, cmd.Run()); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if cwd := <-got; cwd != real {
		t.Fatalf("sent cwd %q, want the physical %q", cwd, real)
	}
}
