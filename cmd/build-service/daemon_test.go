package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
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

func TestDaemonRunsARealBuildAsTheCallerAndDeniesEscapes(t *testing.T) {
	e := newEnv(t)
	d := e.startDaemon(nil)
	t.Run("alice's make all runs as alice in her workspace", func(t *testing.T) {
		r := e.cli(e.alice, e.proj(e.alice), "make", "all")
		if r.code != 0 || r.stdout != "hello bs-alice from "+e.proj(e.alice)+"\n" {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("a failing target gives make's exit code 2", func(t *testing.T) {
		if r := e.cli(e.bob, e.proj(e.bob), "make", "fail"); r.code != 2 {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("-C ../.. is denied with 126 and a reason", func(t *testing.T) {
		r := e.cli(e.alice, e.proj(e.alice), "make", "-C", "../..", "all")
		if r.code != 126 || !strings.Contains(r.stderr, "leaves the workspace") {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("a root caller is denied", func(t *testing.T) {
		cmd := exec.Command(cliBin, "make", "all")
		cmd.Dir = e.proj(e.alice)
		cmd.Env = []string{"BUILD_SERVICE_SOCKET=" + e.sock}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 126 {
			t.Errorf("root: %v %s", err, out)
		}
	})
	t.Run("the log has a start line and a line per build start and end", func(t *testing.T) {
		for _, want := range []string{"build-service started", "policy_revision=", "cgroup_mode=", "socket=" + e.sock, "build started", "build finished", "exit_code=2", "request denied"} {
			waitFor(t, "log line with "+want, func() bool { return strings.Contains(d.log.String(), want) })
		}
		if b, err := os.ReadFile(filepath.Join(e.dir, "log", "build-service.log")); err != nil || !bytes.Contains(b, []byte("build finished")) {
			t.Errorf("log file: %v", err)
		}
	})
	if err := d.stop(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
	if _, err := os.Lstat(e.sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

// garbage is issue 6's bad-input list, each a raw request.
func garbage() []struct {
	name  string
	raw   []byte
	close bool
} {
	return []struct {
		name  string
		raw   []byte
		close bool
	}{
		{"empty request", nil, true},
		{"not JSON", []byte("please make all\n"), false},
		{"JSON that is not an object", []byte("[\"make\"]\n"), false},
		{"oversized line", append(bytes.Repeat([]byte("x"), 70<<10), '\n'), false},
		{"no newline", []byte(`{"schema_version":"1","command":"make","cwd":"/"}`), true},
		{"wrong types", []byte(`{"schema_version":"1","command":"make","cwd":"/","args":[1,2]}` + "\n"), false},
		{"unknown field", []byte(`{"schema_version":"1","command":"make","cwd":"/","uid":0}` + "\n"), false},
		{"wrong schema_version", []byte(`{"schema_version":"9","command":"make","cwd":"/"}` + "\n"), false},
		{"NUL in a path", []byte(`{"schema_version":"1","command":"make","cwd":"/\u0000"}` + "\n"), false},
		{"non-UTF-8 in an arg", []byte("{\"schema_version\":\"1\",\"command\":\"make\",\"cwd\":\"/\",\"args\":[\"\xc3\x28\"]}\n"), false},
		{"100 000 args", []byte(`{"schema_version":"1","command":"make","cwd":"/","args":[` + strings.Repeat(`"a",`, 100000) + `"a"]}` + "\n"), false},
		{"duplicate keys", []byte(`{"schema_version":"1","command":"make","command":"sh","cwd":"/"}` + "\n"), false},
		{"trailing data", []byte(`{"schema_version":"1","command":"make","cwd":"/"}{}` + "\n"), false},
	}
}

func TestDaemonRefusesEveryKindOfGarbageAndCarriesOn(t *testing.T) {
	e := newEnv(t)
	d := e.startDaemon(nil)
	for _, g := range garbage() {
		t.Run(g.name, func(t *testing.T) {
			before := d.log.Count("request refused")
			c := dialAs(t, e.bob, e.sock)
			if g.close {
				c.Write(g.raw)
				c.CloseWrite()
			} else if len(g.raw) > 0 {
				go c.Write(g.raw)
			}
			evs, err := readEvents(t, c)
			if err != nil {
				t.Fatalf("%v (events %+v)", err, evs)
			}
			if len(evs) != 2 || evs[0].Type != protocol.EventStderr || strings.Count(evs[0].Data, "\n") != 1 ||
				evs[1].Type != protocol.EventExit || *evs[1].Code != protocol.ExitUnavailable {
				t.Errorf("want one error line and exit 125, got %+v", evs)
			}
			waitFor(t, "the refusal's log line", func() bool { return d.log.Count("request refused") == before+1 })
		})
	}
	t.Run("a client that connects and sends nothing hits the deadline", func(t *testing.T) {
		c := dialAs(t, e.bob, e.sock)
		began := time.Now()
		evs, err := readEvents(t, c)
		if err != nil || len(evs) != 2 || !strings.Contains(evs[0].Data, "no complete request line within 3s") {
			t.Errorf("%v %+v", err, evs)
		}
		if time.Since(began) > 15*time.Second {
			t.Errorf("took %s", time.Since(began))
		}
	})
	t.Run("a client that sends a byte a second hits the same absolute deadline", func(t *testing.T) {
		c := dialAs(t, e.bob, e.sock)
		go func() {
			for _, b := range []byte(`{"schema_version":"1","command":"make","cwd":"/"}` + "\n") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
		evs, err := readEvents(t, c)
		if err != nil || len(evs) != 2 || !strings.Contains(evs[0].Data, "no complete request line") {
			t.Errorf("%v %+v", err, evs)
		}
	})
	if r := e.cli(e.bob, e.proj(e.bob), "make", "all"); r.code != 0 {
		t.Errorf("honest build after the garbage: %+v", r)
	}
}

func TestSIGTERMWithBuildsInFlightGivesEveryClientAnExitAndLeavesNothing(t *testing.T) {
	e := newEnv(t)
	d := e.startDaemon(nil)
	type res struct {
		evs []protocol.Event
		err error
	}
	results := make(chan res, 3)
	for i := range 3 {
		u := e.alice
		if i == 2 {
			u = e.bob
		}
		c := dialAs(t, u, e.sock)
		req, _ := protocol.EncodeRequest(&protocol.Request{SchemaVersion: "1", Command: "make", Args: []string{"slow"}, Cwd: e.proj(u)})
		c.Write(req)
		go func() {
			evs, err := readEvents(t, c)
			results <- res{evs, err}
		}()
	}
	waitFor(t, "three builds running", func() bool { return d.log.Count("build started") == 3 && len(sleepers()) >= 3 })
	began := time.Now()
	if err := d.stop(); err != nil {
		t.Errorf("daemon exit after SIGTERM: %v", err)
	}
	for range 3 {
		r := <-results
		if r.err != nil {
			t.Errorf("client: %v %+v", r.err, r.evs)
			continue
		}
		ex := r.evs[len(r.evs)-1]
		if ex.Type != protocol.EventExit || !ex.Cancelled {
			t.Errorf("want a cancelled exit event, got %+v", r.evs)
		}
	}
	// grace 1 s + kill grace 1 s: well under 15 s.
	if el := time.Since(began); el > 15*time.Second {
		t.Errorf("shutdown took %s", el)
	}
	if _, err := os.Lstat(e.sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	waitFor(t, "no build process left", func() bool { return len(sleepers()) == 0 })
	if !strings.Contains(d.log.String(), "cancelling builds") {
		t.Errorf("log does not say builds were cancelled")
	}
}

func TestRestartOverAStaleSocketAndRefusalOfANonSocket(t *testing.T) {
	e := newEnv(t)
	d := e.startDaemon(nil)
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	if fi, err := os.Lstat(e.sock); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("the killed daemon should leave its socket: %v", err)
	}
	d2 := e.startDaemon(nil)
	if r := e.cli(e.alice, e.proj(e.alice), "make", "all"); r.code != 0 {
		t.Errorf("build after restart: %+v", r)
	}
	d2.stop()

	os.WriteFile(e.sock, []byte("not a socket"), 0o644)
	e.writeConfig()
	out, err := exec.Command(daemonBin, "--config", e.cfgPath).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "refusing to replace") || !strings.Contains(string(out), "is not a socket") {
		t.Errorf("daemon over a regular file: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(e.sock); string(b) != "not a socket" {
		t.Errorf("the file at the socket path was touched")
	}
}

func TestSocketActivationUsesTheInheritedSocketAndLeavesItInPlace(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(filepath.Dir(e.sock), 0o755)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	defer l.Close()
	// The unit sets group and mode; here the test does.
	os.Chown(e.sock, 0, testGroup(t))
	os.Chmod(e.sock, 0o660)
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Lstat(e.sock)
	d := e.startDaemon(func(c *exec.Cmd) {
		// LISTEN_PID must be the daemon's own pid: exec keeps the shell's.
		c.Args = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`}, c.Args...)
		c.Path = "/bin/sh"
		c.ExtraFiles = []*os.File{f}
		// The config's socket path is the same file: a daemon that ignored
		// LISTEN_FDS would find it in use and fail.
	})
	f.Close()
	waitFor(t, "the start line with socket_activated=true", func() bool { return strings.Contains(d.log.String(), "socket_activated=true") })
	r := e.cli(e.alice, e.proj(e.alice), "make", "all")
	if r.code != 0 {
		t.Errorf("build over the inherited socket: %+v", r)
	}
	if err := d.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	after, err := os.Lstat(e.sock)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("the activated socket must stay (same inode) after stop: %v", err)
	}
}

func TestSIGHUPWithABrokenConfigOrPolicyKeepsTheOldOneAndAGoodOneReplacesIt(t *testing.T) {
	e := newEnv(t)
	pol := filepath.Join(e.dir, "policy")
	if out, err := exec.Command(daemonBin, "policy", "export", pol).CombinedOutput(); err != nil {
		t.Fatalf("policy export: %v %s", err, out)
	}
	e.extra = "[policy]\ndirectory = " + quoteTOML(pol) + "\n"
	d := e.startDaemon(nil)
	waitFor(t, "the start line", func() bool { return strings.Contains(d.log.String(), "build-service started") })
	rev1 := field(d.log.String(), "policy_revision=")

	// Break the config: an unknown key. The old generation keeps serving.
	goodCfg, _ := os.ReadFile(e.cfgPath)
	os.WriteFile(e.cfgPath, append(append([]byte{}, goodCfg...), []byte("\n[build.timeouts]\nmax_secs = 1\n")...), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the config reload failure in the log", func() bool { return d.log.Count("reload failed") == 1 })
	if r := e.cli(e.alice, e.proj(e.alice), "make", "all"); r.code != 0 {
		t.Errorf("the old config should still answer: %+v", r)
	}
	os.WriteFile(e.cfgPath, goodCfg, 0o644)

	// Break the policy: a syntax error.
	cmdRego := filepath.Join(pol, "command.rego")
	good, _ := os.ReadFile(cmdRego)
	os.WriteFile(cmdRego, append(append([]byte{}, good...), []byte("\ndeny contains x if {\n")...), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitState("RELOADING=1")
	d.waitState("READY=1")
	waitFor(t, "the policy reload failure in the log", func() bool { return d.log.Count("reload failed") == 2 })
	if !strings.Contains(d.log.String(), "command.rego") {
		t.Errorf("the reload error does not name the file")
	}
	if r := e.cli(e.alice, e.proj(e.alice), "make", "all"); r.code != 0 {
		t.Errorf("the old policy should still answer: %+v", r)
	}

	// A valid policy that denies every command but "true": make is refused.
	fixed := strings.Replace(string(good), "allowed_commands := object.keys(data.config.build.commands)", `allowed_commands := {"true"}`, 1)
	if fixed == string(good) {
		t.Fatal("could not edit the exported policy")
	}
	// A build in flight across the reload is not touched.
	inflight := dialAs(t, e.bob, e.sock)
	req, _ := protocol.EncodeRequest(&protocol.Request{SchemaVersion: "1", Command: "make", Args: []string{"wait"}, Cwd: e.proj(e.bob)})
	before := d.log.Count("build started")
	inflight.Write(req)
	waitFor(t, "the in-flight build", func() bool { return d.log.Count("build started") == before+1 })
	os.WriteFile(cmdRego, []byte(fixed), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload in the log", func() bool { return strings.Contains(d.log.String(), "reloaded config and policy") })
	rev2 := field(d.log.String()[strings.Index(d.log.String(), "reloaded config and policy"):], "policy_revision=")
	if rev2 == "" || rev2 == rev1 {
		t.Errorf("revision %q -> %q: the log must name the new revision", rev1, rev2)
	}
	r := e.cli(e.alice, e.proj(e.alice), "make", "all")
	if r.code != 126 || !strings.Contains(r.stderr, `command "make" is not allowed`) {
		t.Errorf("the new policy is not in force: %+v", r)
	}
	evs, err := readEvents(t, inflight)
	if err != nil || *evs[len(evs)-1].Code != 0 || evs[0].Data != "waited\n" {
		t.Errorf("the build in flight during the reload: %v %+v", err, evs)
	}
}

func TestUnprivilegedDaemonServesOnlyItsOwnUID(t *testing.T) {
	e := newEnv(t)
	// bob runs the daemon: the socket directory must be his.
	os.MkdirAll(filepath.Dir(e.sock), 0o755)
	os.Chown(filepath.Dir(e.sock), e.bob.UID, e.bob.GID)
	os.MkdirAll(filepath.Join(e.dir, "log"), 0o755)
	os.Chown(filepath.Join(e.dir, "log"), e.bob.UID, e.bob.GID)
	d := e.startDaemon(func(c *exec.Cmd) {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: credOf(e.bob)}
	})
	waitFor(t, "the start line with dev_mode=true", func() bool { return strings.Contains(d.log.String(), "dev_mode=true") })
	r := e.cli(e.bob, e.proj(e.bob), "make", "all")
	if r.code != 0 || !strings.Contains(r.stdout, "hello bs-bob") {
		t.Errorf("bob's own build: %+v", r)
	}
	r = e.cli(e.alice, e.proj(e.alice), "make", "all")
	if r.code != 126 || !strings.Contains(r.stderr, "serves only that uid") {
		t.Errorf("alice at bob's daemon: %+v", r)
	}
	d.stop()
}

func TestCheckConfigExplainAndPolicySubcommands(t *testing.T) {
	e := newEnv(t)
	e.writeConfig()
	run := func(args ...string) (string, int) {
		out, err := exec.Command(daemonBin, args...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	t.Run("check-config accepts a good config", func(t *testing.T) {
		if out, code := run("check-config", "--config", e.cfgPath); code != 0 || !strings.Contains(out, "ok") {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("check-config names a misspelt key", func(t *testing.T) {
		bad := filepath.Join(e.dir, "bad.toml")
		os.WriteFile(bad, []byte("schema_version = \"1\"\n[service]\nsocket_pth = \"/x\"\n"), 0o644)
		if out, code := run("check-config", "--config", bad); code == 0 || !strings.Contains(out, "socket_pth") {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("check-config refuses a policy directory that does not compile", func(t *testing.T) {
		pol := filepath.Join(e.dir, "badpol")
		os.MkdirAll(pol, 0o755)
		os.WriteFile(filepath.Join(pol, "x.rego"), []byte("package build_service\n\ndecision := {\n"), 0o644)
		cfg := filepath.Join(e.dir, "badpol.toml")
		os.WriteFile(cfg, []byte("schema_version = \"1\"\n[policy]\ndirectory = "+quoteTOML(pol)+"\n[logging]\ndirectory = \"\"\ndecision_log = \"\"\n"), 0o644)
		if out, code := run("check-config", "--config", cfg); code == 0 || !strings.Contains(out, "x.rego") {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("check-config refuses a socket_group that does not exist", func(t *testing.T) {
		cfg := filepath.Join(e.dir, "nogroup.toml")
		os.WriteFile(cfg, []byte("schema_version = \"1\"\n[service]\nsocket_group = \"bs-no-such-group\"\n[logging]\ndirectory = \"\"\ndecision_log = \"\"\n"), 0o644)
		if out, code := run("check-config", "--config", cfg); code != 1 || !strings.Contains(out, "bs-no-such-group") {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("check-config names a build command that is not installed", func(t *testing.T) {
		cfg := filepath.Join(e.dir, "nomake.toml")
		missing := filepath.Join(e.dir, "nomake")
		os.WriteFile(cfg, []byte("schema_version = \"1\"\n[build.commands]\nmake = "+quoteTOML(missing)+"\n[logging]\ndirectory = \"\"\ndecision_log = \"\"\n"), 0o644)
		if out, code := run("check-config", "--config", cfg); code != 1 || !strings.Contains(out, "build.commands.make") || !strings.Contains(out, missing) {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("a relative --socket is refused like a relative socket_path", func(t *testing.T) {
		if out, code := run("--config", e.cfgPath, "--socket", "rel/build.sock"); code == 0 || !strings.Contains(out, "socket_path") {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("explain of a denied request names the rule and runs nothing", func(t *testing.T) {
		out, code := run("explain", "--config", e.cfgPath, "--user", e.alice.Name, "--cwd", e.proj(e.alice), "--", "make", "--directory=/etc", "all")
		if code != 0 || !strings.Contains(out, "DENIED") || !strings.Contains(out, "workspace.") || !strings.Contains(out, `"schema_version"`) {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("explain of an allowed request says so", func(t *testing.T) {
		out, code := run("explain", "--config", e.cfgPath, "--user", e.alice.Name, "--cwd", e.proj(e.alice), "--env", "CFLAGS=-O2", "--", "make", "all")
		if code != 0 || !strings.Contains(out, "# result: ALLOWED") || !strings.Contains(out, "nothing was run") || !strings.Contains(out, `"CFLAGS"`) {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("policy export then policy test passes", func(t *testing.T) {
		pol := filepath.Join(e.dir, "exported")
		if out, code := run("policy", "export", pol); code != 0 {
			t.Fatalf("%d %s", code, out)
		}
		if out, code := run("policy", "test", pol); code != 0 || !strings.Contains(out, "PASS") {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("--version prints a version", func(t *testing.T) {
		if out, code := run("--version"); code != 0 || !strings.HasPrefix(out, "build-service ") {
			t.Errorf("%d %s", code, out)
		}
	})
	t.Run("an unknown subcommand is a usage error", func(t *testing.T) {
		if out, code := run("frobnicate"); code != 2 || !strings.Contains(out, "usage") {
			t.Errorf("%d %s", code, out)
		}
	})
}

func quoteTOML(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// field returns the value of the first key=value field named by prefix.
func field(log, prefix string) string {
	i := strings.Index(log, prefix)
	if i < 0 {
		return ""
	}
	v := log[i+len(prefix):]
	if j := strings.IndexAny(v, " \n"); j >= 0 {
		v = v[:j]
	}
	return v
}

func TestDoctorTimeoutCapAndDecisionIDTracing(t *testing.T) {
	e := newEnv(t)
	d := e.startDaemon(nil)
	t.Run("a doctor request reports how the daemon sees the caller and runs nothing", func(t *testing.T) {
		c := dialAs(t, e.alice, e.sock)
		req, err := protocol.EncodeRequest(&protocol.Request{SchemaVersion: "1", Type: "doctor", Command: "make", Cwd: e.proj(e.alice)})
		if err != nil {
			t.Fatal(err)
		}
		c.Write(req)
		evs, err := readEvents(t, c)
		if err != nil || len(evs) != 2 || *evs[1].Code != 0 || evs[1].DecisionID == "" {
			t.Fatalf("%v %+v", err, evs)
		}
		var rep struct {
			Peer     struct{ UID, GID int }
			Account  struct{ Name string }
			Identity struct{ UID int }
			Mapping  struct {
				Cwd struct {
					Resolved string
					Inside   bool `json:"inside_workspace"`
				}
			}
			Allowed bool
		}
		if err := json.Unmarshal([]byte(evs[0].Data), &rep); err != nil {
			t.Fatalf("doctor report %q: %v", evs[0].Data, err)
		}
		if rep.Peer.UID != e.alice.UID || rep.Account.Name != e.alice.Name || rep.Identity.UID != e.alice.UID ||
			rep.Mapping.Cwd.Resolved != e.proj(e.alice) || !rep.Mapping.Cwd.Inside || !rep.Allowed {
			t.Errorf("doctor report: %+v", rep)
		}
		if d.log.Count("build started") != 0 {
			t.Errorf("a doctor request started a build")
		}
	})
	t.Run("a timeout above max_sec is capped and the client is told", func(t *testing.T) {
		r := e.cli(e.bob, e.proj(e.bob), "--timeout", "99999", "make", "all")
		if r.code != 0 || !strings.Contains(r.stderr, "timeout capped at 3600 s") {
			t.Errorf("%+v", r)
		}
	})
	t.Run("the exit event's decision_id is the one in the build's log lines", func(t *testing.T) {
		c := dialAs(t, e.bob, e.sock)
		req, _ := protocol.EncodeRequest(&protocol.Request{SchemaVersion: "1", RequestID: "trace-me", Command: "make", Args: []string{"all"}, Cwd: e.proj(e.bob)})
		c.Write(req)
		evs, err := readEvents(t, c)
		if err != nil {
			t.Fatal(err)
		}
		id := evs[len(evs)-1].DecisionID
		if id == "" {
			t.Fatalf("no decision_id in %+v", evs)
		}
		waitFor(t, "the end line", func() bool { return d.log.Count("decision_id="+id) == 2 })
		for _, l := range strings.Split(d.log.String(), "\n") {
			if strings.Contains(l, "decision_id="+id) && !strings.Contains(l, "request_id=trace-me") {
				t.Errorf("line with the decision id lacks the request id: %s", l)
			}
		}
		dl, _ := os.ReadFile(filepath.Join(e.dir, "log", "decisions.log"))
		if !bytes.Contains(dl, []byte(id)) {
			t.Errorf("decision %s not in the decision log", id)
		}
	})
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitState("STOPPING=1")
	<-d.done
}

func TestASecondSIGTERMCancelsBuildsWithoutWaitingForTheGrace(t *testing.T) {
	e := newEnv(t)
	d := e.startDaemonWith(func(cfg string) string {
		return strings.Replace(cfg, "shutdown_grace_sec = 1", "shutdown_grace_sec = 600", 1)
	}, "")
	c := dialAs(t, e.alice, e.sock)
	req, _ := protocol.EncodeRequest(&protocol.Request{SchemaVersion: "1", Command: "make", Args: []string{"slow"}, Cwd: e.proj(e.alice)})
	c.Write(req)
	waitFor(t, "the build running", func() bool { return len(sleepers()) > 0 })
	d.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, "the first stop", func() bool { return strings.Contains(d.log.String(), "waiting for builds") })
	d.cmd.Process.Signal(syscall.SIGTERM)
	evs, err := readEvents(t, c)
	if err != nil || !evs[len(evs)-1].Cancelled {
		t.Errorf("%v %+v", err, evs)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon waited for the 600 s grace after a second SIGTERM")
	}
	if len(sleepers()) != 0 {
		t.Errorf("build processes left: %v", sleepers())
	}
}
