package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/protocol"
)

// These tests run the real daemon binary (with the real config, mapper,
// engine and executor) as a child process, and real clients as the test
// users: build-cli for honest builds, and raw sockets connected by a
// process running as the user for everything hostile.

var (
	binDir    string // 0755, root-owned: the daemon is its own exec helper
	daemonBin string
	cliBin    string
	dialerBin string
)

func TestMain(m *testing.M) {
	testenv.DialerMain()
	code, err := buildBinaries()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code = m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

func buildBinaries() (int, error) {
	var err error
	binDir, err = os.MkdirTemp("", "bs-daemon-test-")
	if err != nil {
		return 1, err
	}
	os.Chmod(binDir, 0o755)
	daemonBin = filepath.Join(binDir, "build-service")
	cliBin = filepath.Join(binDir, "build-cli")
	for _, b := range []struct{ out, pkg string }{{daemonBin, "."}, {cliBin, "../build-cli"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 1, fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	dialerBin, err = testenv.InstallDialer(binDir)
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// credOf is u's full credential, for running a process as u.
func credOf(u testenv.User) *syscall.Credential {
	groups := make([]uint32, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, uint32(g))
	}
	return &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: groups}
}

// dialAs returns a connection to path made by a process running as u.
func dialAs(t testing.TB, u testenv.User, path string) *net.UnixConn {
	t.Helper()
	return testenv.DialAs(t, dialerBin, u, path)
}

// waitFor polls cond for up to 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// env is one test's world: a config, workspaces for alice and bob, and a
// socket directory.
type env struct {
	t          *testing.T
	dir        string
	sock       string
	cfgPath    string
	alice, bob testenv.User
	extra      string // more TOML appended to the config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	alice, bob := testenv.EnsureUsers(t)
	dir, err := os.MkdirTemp("", "bs-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "run", "build.sock"), cfgPath: filepath.Join(dir, "config.toml"), alice: alice, bob: bob}
	for _, u := range []testenv.User{alice, bob} {
		proj := filepath.Join(dir, "ws", u.Name, "proj")
		if err := os.MkdirAll(proj, 0o755); err != nil {
			t.Fatal(err)
		}
		mk := "all:\n\t@echo hello $$(id -un) from $$(pwd)\n" +
			"slow:\n\t@echo started; sleep 31.4159\n" +
			"fail:\n\t@false\n" +
			"wait:\n\t@sleep 2; echo waited\n"
		os.WriteFile(filepath.Join(proj, "Makefile"), []byte(mk), 0o644)
		for _, p := range []string{filepath.Join(dir, "ws", u.Name), proj, filepath.Join(proj, "Makefile")} {
			os.Chown(p, u.UID, u.GID)
		}
	}
	os.Chmod(filepath.Join(dir, "ws"), 0o755)
	return e
}

func (e *env) proj(u testenv.User) string { return filepath.Join(e.dir, "ws", u.Name, "proj") }

func (e *env) writeConfig() {
	e.writeConfigWith(nil, "")
}

// writeConfigWith writes the config with extra [service] lines and a final
// edit.
func (e *env) writeConfigWith(edit func(string) string, service string) {
	cfg := fmt.Sprintf(`schema_version = "1"
[service]
socket_path = %q
socket_group = "bs-team"
socket_mode = "0660"
request_timeout_sec = 3
shutdown_grace_sec = 1
%s[build]
workspace_root = %q
[build.timeouts]
kill_grace_sec = 1
[logging]
directory = %q
console = true
level = "info"
%s`, e.sock, service, filepath.Join(e.dir, "ws"), filepath.Join(e.dir, "log"), e.extra)
	if edit != nil {
		cfg = edit(cfg)
	}
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

type daemon struct {
	t     *testing.T
	cmd   *exec.Cmd
	log   *testenv.LogBuffer
	done  chan struct{}
	err   error
	state chan string // sd_notify messages
}

// startDaemon writes the config and starts the daemon with cmdMod applied
// to its command; it waits for READY=1 on NOTIFY_SOCKET.
func (e *env) startDaemon(cmdMod func(*exec.Cmd)) *daemon {
	e.t.Helper()
	e.writeConfig()
	return e.launch(cmdMod)
}

// startDaemonWith is startDaemon with a config edit and extra [service] lines.
func (e *env) startDaemonWith(edit func(string) string, service string) *daemon {
	e.t.Helper()
	e.writeConfigWith(edit, service)
	return e.launch(nil)
}

func (e *env) launch(cmdMod func(*exec.Cmd)) *daemon {
	e.t.Helper()
	d := &daemon{t: e.t, log: &testenv.LogBuffer{}, done: make(chan struct{}), state: make(chan string, 64)}
	nsock := filepath.Join(e.dir, fmt.Sprintf("notify-%d.sock", time.Now().UnixNano()))
	nconn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsock, Net: "unixgram"})
	if err != nil {
		e.t.Fatal(err)
	}
	// An unprivileged daemon must be able to notify too.
	os.Chmod(nsock, 0o666)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := nconn.ReadFromUnix(buf)
			if err != nil {
				close(d.state)
				return
			}
			d.state <- string(buf[:n])
		}
	}()
	d.cmd = exec.Command(daemonBin, "--config", e.cfgPath)
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+nsock, "GODEBUG=execwait=2")
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	if cmdMod != nil {
		cmdMod(d.cmd)
	}
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		nconn.Close()
		close(d.done)
	}()
	e.t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		if e.t.Failed() {
			e.t.Logf("daemon log:\n%s", d.log)
		}
	})
	d.waitState("READY=1")
	return d
}

// waitState waits for an sd_notify message containing want.
func (d *daemon) waitState(want string) {
	d.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case s, ok := <-d.state:
			if !ok {
				d.t.Fatalf("daemon exited before %s: %v\n%s", want, d.err, d.log)
			}
			if strings.Contains(s, want) {
				return
			}
		case <-timeout:
			d.t.Fatalf("no %s from the daemon within 60 s\n%s", want, d.log)
		}
	}
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop sends SIGTERM and waits for exit.
func (d *daemon) stop() error {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.err
	case <-time.After(60 * time.Second):
		d.t.Fatalf("daemon did not stop within 60 s after SIGTERM\n%s", d.log)
		return nil
	}
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// cli runs build-cli as u in dir.
func (e *env) cli(u testenv.User, dir string, args ...string) cliResult {
	e.t.Helper()
	cmd := e.cliCmd(u, dir, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("build-cli: %v", err)
	}
	return cliResult{code, out.String(), errb.String()}
}

func (e *env) cliCmd(u testenv.User, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(cliBin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"BUILD_SERVICE_SOCKET=" + e.sock, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credOf(u)}
	return cmd
}

// readEvents reads events until the daemon closes the connection.
func readEvents(t testing.TB, c net.Conn) ([]protocol.Event, error) {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var evs []protocol.Event
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			ev, derr := protocol.DecodeEvent(line)
			if derr != nil {
				return evs, fmt.Errorf("bad event %q: %w", line, derr)
			}
			evs = append(evs, ev)
		}
		if err != nil {
			if len(evs) > 0 && evs[len(evs)-1].Type == protocol.EventExit && (errors.Is(err, syscall.ECONNRESET) || err.Error() == "EOF") {
				return evs, nil
			}
			return evs, err
		}
	}
}

// procStat is what the load test watches of the daemon.
type procStat struct {
	fds, children int
	rssKiB        int
}

func statOf(pid int) procStat {
	var s procStat
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	s.fds = len(fds)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			s.rssKiB, _ = strconv.Atoi(f[1])
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		if len(f) > 2 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			s.children++
		}
	}
	return s
}

// goroutines asks the daemon for its goroutine count (SIGUSR1 logs a
// stats line) and returns it.
func (d *daemon) goroutines() int {
	d.t.Helper()
	before := d.log.Count("msg=stats") + d.log.Count(" stats ")
	d.cmd.Process.Signal(syscall.SIGUSR1)
	var n int
	waitFor(d.t, "stats line", func() bool {
		return d.log.Count("msg=stats")+d.log.Count(" stats ") > before
	})
	lines := strings.Split(d.log.String(), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], " stats ") {
			for _, f := range strings.Fields(lines[i]) {
				if v, ok := strings.CutPrefix(f, "goroutines="); ok {
					n, _ = strconv.Atoi(v)
					return n
				}
			}
		}
	}
	d.t.Fatalf("no goroutines= in the stats line")
	return 0
}

// sleepers lists live processes running the test Makefile's sleep.
func sleepers() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		st, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if bytes.Contains(st, []byte(") Z ")) {
			continue
		}
		if bytes.Contains(cl, []byte("31.4159")) {
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(cl), "\x00", " "))
		}
	}
	return out
}

func testGroup(t *testing.T) int { return testenv.GroupID(t, testenv.GroupShared) }

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
