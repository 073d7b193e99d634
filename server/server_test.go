package server_test

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"context"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/protocol"
	"github.com/build-service/build-service/server"
)

// badInputs is the attack list of issue 6: each must get exactly one
// stderr line and exit 125, and leave the daemon serving.
func badInputs() []struct {
	name   string
	raw    []byte
	close  bool // half-close after sending
	expect string
} {
	huge := bytes.Repeat([]byte("a"), 70<<10)
	many := []byte(`{"schema_version":"1","command":"make","cwd":"/tmp","args":[` + strings.Repeat(`"x",`, 100000) + `"x"]}` + "\n")
	return []struct {
		name   string
		raw    []byte
		close  bool
		expect string
	}{
		{"an empty request (connection closed at once)", nil, true, "empty request"},
		{"an empty line", []byte("\n"), false, "bad request"},
		{"text that is not JSON", []byte("make all please\n"), false, "bad request"},
		{"a JSON array instead of an object", []byte("[1,2,3]\n"), false, "bad request"},
		{"a JSON string instead of an object", []byte("\"make\"\n"), false, "bad request"},
		{"a line over 64 KiB", append(huge, '\n'), false, "longer than"},
		{"100 000 args", many, false, "longer than"},
		{"a request without its newline, then EOF", []byte(`{"schema_version":"1","command":"make","cwd":"/tmp"}`), true, "not terminated by a newline"},
		{"args of the wrong type", []byte(`{"schema_version":"1","command":"make","cwd":"/tmp","args":"all"}` + "\n"), false, "bad request"},
		{"timeout_sec as a string", []byte(`{"schema_version":"1","command":"make","cwd":"/tmp","timeout_sec":"10"}` + "\n"), false, "bad request"},
		{"an unknown field", []byte(`{"schema_version":"1","command":"make","cwd":"/tmp","user":"root"}` + "\n"), false, "bad request"},
		{"a case-folded key", []byte(`{"schema_version":"1","command":"make","Cwd":"/tmp"}` + "\n"), false, "bad request"},
		{"a wrong schema_version", []byte(`{"schema_version":"2","command":"make","cwd":"/tmp"}` + "\n"), false, "schema_version"},
		{"a NUL byte in cwd", []byte(`{"schema_version":"1","command":"make","cwd":"/tmp\u0000/x"}` + "\n"), false, "bad request"},
		{"non-UTF-8 bytes in an arg", []byte("{\"schema_version\":\"1\",\"command\":\"make\",\"cwd\":\"/tmp\",\"args\":[\"\xff\xfe\"]}\n"), false, "bad request"},
		{"duplicate keys", []byte(`{"schema_version":"1","command":"make","cwd":"/tmp","cwd":"/etc"}` + "\n"), false, "bad request"},
		{"trailing data after the object", []byte(`{"schema_version":"1","command":"make","cwd":"/tmp"} {"x":1}` + "\n"), false, "bad request"},
		{"an unsupported request type", []byte(`{"schema_version":"1","type":"shell","command":"make","cwd":"/tmp"}` + "\n"), false, "bad request"},
	}
}

func checkRefusal(t *testing.T, evs []protocol.Event, code int, expect string) {
	t.Helper()
	ex := exitOf(t, evs)
	if *ex.Code != code {
		t.Errorf("exit code %d, want %d (%+v)", *ex.Code, code, evs)
	}
	if len(evs) != 2 || evs[0].Type != protocol.EventStderr {
		t.Fatalf("want one stderr event then exit, got %+v", evs)
	}
	msg := evs[0].Data
	if !strings.HasPrefix(msg, "build-service: ") || !strings.HasSuffix(msg, "\n") || strings.Count(msg, "\n") != 1 {
		t.Errorf("message %q is not one line starting with build-service:", msg)
	}
	if !strings.Contains(msg, expect) {
		t.Errorf("message %q does not mention %q", msg, expect)
	}
}

func TestBadInputGetsOneErrorLineAndExit125AndTheDaemonCarriesOn(t *testing.T) {
	h := start(t, nil, nil)
	for _, tc := range badInputs() {
		t.Run(tc.name, func(t *testing.T) {
			before := h.log.CountLines("request refused")
			c := h.dial()
			if tc.close {
				c.Write(tc.raw)
				c.CloseWrite()
			} else {
				send(c, tc.raw)
			}
			checkRefusal(t, readEvents(t, c), protocol.ExitUnavailable, tc.expect)
			if n := h.log.CountLines("request refused") - before; n != 1 {
				t.Errorf("%d log lines for the refusal, want 1\n%s", n, h.log)
			}
			h.honest("after-" + strings.ReplaceAll(tc.name, " ", "-"))
		})
	}
	if len(h.runner.jobs) != len(badInputs()) {
		t.Errorf("%d jobs ran, want only the %d honest ones", len(h.runner.jobs), len(badInputs()))
	}
}

func TestSilentAndSlowClientsHitTheAbsoluteRequestDeadline(t *testing.T) {
	h := start(t, func(c *config.Config) { c.Service.RequestTimeoutSec = 2 }, nil)
	t.Run("a client that connects and sends nothing", func(t *testing.T) {
		checkRefusal(t, h.roundTrip(nil), protocol.ExitUnavailable, "no complete request line within 2s")
	})
	t.Run("a client that sends a byte every 200 ms", func(t *testing.T) {
		c := h.dial()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for _, b := range request("slow", "all") {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		began := time.Now()
		checkRefusal(t, readEvents(t, c), protocol.ExitUnavailable, "no complete request line")
		// The whole request would take ~20 s; the deadline is absolute.
		if el := time.Since(began); el > 15*time.Second {
			t.Errorf("refused after %s: the deadline was extended by the dribble", el)
		}
	})
	h.honest("after-slow")
}

func TestDenialSendsReasonsAndExit126AndRunsNothing(t *testing.T) {
	h := start(t, nil, nil)
	evs := h.roundTrip(request("d1", "deny"))
	ex := exitOf(t, evs)
	if *ex.Code != protocol.ExitDenied || !ex.Denied || ex.DecisionID != "dec-d1" ||
		len(ex.Reasons) != 2 || ex.Reasons[0] != "args may not say deny" {
		t.Errorf("exit = %+v", ex)
	}
	if len(evs) != 2 || !strings.Contains(evs[0].Data, "denied: args may not say deny; second reason") {
		t.Errorf("events = %+v", evs)
	}
	if len(h.runner.jobs) != 0 {
		t.Errorf("a denied request ran: %+v", h.runner.jobs)
	}
	if h.log.CountLines("request denied") != 1 {
		t.Errorf("want one denial log line:\n%s", h.log)
	}
}

func TestAllowedJobTakesBinaryFromConfigArgvFromMapperAndIdentityFromDecision(t *testing.T) {
	h := start(t, nil, nil)
	raw := []byte(`{"schema_version":"1","request_id":"j1","command":"make","args":["all"],"cwd":"/tmp","timeout_sec":500,"env":{"CFLAGS":"-O2"}}` + "\n")
	evs := h.roundTrip(raw)
	ex := exitOf(t, evs)
	if *ex.Code != 0 || ex.DecisionID != "dec-j1" {
		t.Errorf("exit = %+v", ex)
	}
	if len(evs) != 4 || !strings.Contains(evs[0].Data, "timeout capped at 100 s") {
		t.Errorf("want the cap notice first: %+v", evs)
	}
	// The stand-in policy passes PATH and SECRET only: the user is told
	// CFLAGS did not reach the build, by name, never by value.
	if len(evs) > 1 && (evs[1].Data != "build-service: not passed to the build (not in build.environment.allow): CFLAGS\n" || strings.Contains(evs[1].Data, "-O2")) {
		t.Errorf("want the dropped-variable notice second: %+v", evs)
	}
	j := h.runner.jobs[0]
	if j.Path != "/usr/bin/make" || j.Name != "make" || strings.Join(j.Args, " ") != "--canonical all" || j.Dir != "/tmp" {
		t.Errorf("job = %+v", j)
	}
	if j.Timeout != 100*time.Second || j.KillGrace != time.Second || j.ID != "dec-j1" {
		t.Errorf("timeout %v grace %v id %q", j.Timeout, j.KillGrace, j.ID)
	}
	if strings.Join(j.Env, " ") != "PATH=/usr/bin:/bin SECRET=hunter2" {
		t.Errorf("env = %q", j.Env)
	}
	if int(j.Cred.UID) != h.alice.UID || int(j.Cred.GID) != h.alice.GID {
		t.Errorf("cred = %+v", j.Cred)
	}
	if strings.Contains(h.log.String(), "hunter2") {
		t.Errorf("an env value reached the log:\n%s", h.log)
	}
	if h.log.CountLines("build started") != 1 || h.log.CountLines("build finished") != 1 {
		t.Errorf("want one start and one end line:\n%s", h.log)
	}
}

func TestAnAllowedMakeWhoseArgvCouldNotBeRenderedIsRefusedAndRunsNothing(t *testing.T) {
	// An operator policy may allow a request whose path facts carry an
	// error; the daemon still must not run make with no arguments.
	h := start(t, nil, nil)
	evs := h.roundTrip(request("unr", "unrenderable"))
	ex := exitOf(t, evs)
	if *ex.Code != 126 || !ex.Denied {
		t.Errorf("exit = %+v", ex)
	}
	if len(h.runner.jobs) != 0 {
		t.Errorf("make ran with an empty argv: %+v", h.runner.jobs)
	}
	if !strings.Contains(evs[0].Data, "could not be resolved") {
		t.Errorf("events = %+v", evs)
	}
}

func TestMakeStartsInTheResolvedDashCDirectoryInsteadOfEnteringItByName(t *testing.T) {
	// make would chdir to --directory by name after the check; the daemon
	// starts it there (the exec helper verifies the directory) and keeps
	// "--directory=." for make's Entering-directory behaviour.
	// A -C that does not exist yet is no different: were it created as a
	// symlink before make ran, make would follow it.
	h := start(t, nil, nil)
	for _, c := range []struct{ arg, dir string }{
		{"cdir", "/var/tmp"},
		{"cmissing", "/var/tmp/missing"},
	} {
		exitOf(t, h.roundTrip(request(c.arg, c.arg)))
		j := h.runner.jobs[len(h.runner.jobs)-1]
		if j.Dir != c.dir || strings.Join(j.Args, " ") != "--directory=. -- all" {
			t.Errorf("%s: job dir %q args %q", c.arg, j.Dir, j.Args)
		}
	}
}

func TestLogValuesAreQuotedSoAnArgumentCannotForgeALine(t *testing.T) {
	h := start(t, nil, nil)
	evs := h.roundTrip(request("forge", "all\n2026-01-01T00:00:00Z INF build finished exit_code=0 user=root", "\x1b[2K\rfake", "a b=c"))
	exitOf(t, evs)
	for _, want := range []string{`"\u001b[2K\rfake"`, `"a b=c"`} {
		if !strings.Contains(h.log.String(), want) {
			t.Errorf("log lacks the escaped argument %s:\n%s", want, h.log)
		}
	}
	if strings.ContainsAny(h.log.String(), "\x1b\r") {
		t.Errorf("a raw control character reached the log")
	}
	for _, l := range strings.Split(h.log.String(), "\n") {
		if strings.HasPrefix(l, "2026-01-01") {
			t.Errorf("forged log line: %q", l)
		}
	}
	if !strings.Contains(h.log.String(), `all\n2026-01-01`) {
		t.Errorf("the argument was not logged escaped:\n%s", h.log)
	}
}

func TestControlLinesForwardSignalsAndEOFCancels(t *testing.T) {
	h := start(t, nil, nil)
	t.Run("an INT control line reaches the build", func(t *testing.T) {
		c := h.dial()
		c.Write(request("sig", "sleep"))
		// Garbage is ignored, not fatal: an unknown type, a line over
		// 1 KiB that spans reads, one that fits one read (its newline
		// must not eat the next line), then the signal, in one write.
		c.Write([]byte(`{"type":"bogus"}` + "\n" + strings.Repeat("x", 5000) + "\n" + strings.Repeat("y", 2000) + "\n" +
			`{"type":"signal","signal":"INT"}` + "\n"))
		ex := exitOf(t, readEvents(t, c))
		if *ex.Code != 130 || ex.Signal != "interrupt" {
			t.Errorf("exit = %+v", ex)
		}
	})
	t.Run("a client that goes away cancels its build", func(t *testing.T) {
		h.runner.started = make(chan string, 1)
		defer func() { h.runner.started = nil }()
		c := h.dial()
		c.Write(request("gone", "sleep"))
		<-h.runner.started
		c.Close()
		deadline := time.Now().Add(15 * time.Second)
		for h.log.CountLines("cancelled=true") == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no cancelled build in the log:\n%s", h.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestSignalFloodIsBounded: a build that ignores its signals keeps make
// alive; a client then streams signal control lines. Each one used to be a
// log line (and a kill(2) as root): tens of thousands a second, enough to
// rotate the audit trail away.
func TestSignalFloodIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name             string
		sig              string
		writes, perWrite int
	}{
		{"attack: 5000 HUP lines in one write at a build that ignores them", "HUP", 1, 5000},
		{"attack: 2000 INT lines in 200 writes", "INT", 200, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, nil, nil)
			h.runner.started = make(chan string, 1)
			c := h.dial()
			c.Write(request("flood", "sleep-ignoring-signals"))
			<-h.runner.started
			for range tc.writes {
				c.Write([]byte(strings.Repeat(`{"type":"signal","signal":"`+tc.sig+`"}`+"\n", tc.perWrite)))
			}
			waitUntil(t, "the flood read", func() bool { return h.log.CountLines("further signal lines ignored") == 1 })
			c.Close()
			waitUntil(t, "the build cancelled", func() bool { return h.log.CountLines("cancelled=true") == 1 })
			if n := h.log.CountLines("forwarding signal to build"); n > 16 {
				t.Errorf("%d signal log lines for one connection, want at most 16", n)
			}
			h.runner.mu.Lock()
			got := h.runner.signals
			h.runner.mu.Unlock()
			if got == 0 || got > 16 {
				t.Errorf("the build got %d signals, want 1..16", got)
			}
		})
	}
}

// TestRefusalFloodIsBoundedPerUID: a client that connects in a loop and
// sends garbage (or nothing) is refused every time, but its refusals must
// not flood the log: thousands of lines a second rotate the audit trail
// away. Every client still gets its answer.
func TestRefusalFloodIsBoundedPerUID(t *testing.T) {
	for _, tc := range []struct {
		name, line, logged string
	}{
		{"attack: 500 connections closed without a request", "", "request refused"},
		{"attack: 500 requests that are not JSON", "garbage\n", "request refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, nil, nil)
			for i := 0; i < 500; i++ {
				c := h.dial()
				c.Write([]byte(tc.line))
				c.CloseWrite()
				evs := readEvents(t, c)
				c.Close()
				if len(evs) != 2 || evs[1].Code == nil || *evs[1].Code != protocol.ExitUnavailable {
					t.Fatalf("refusal %d: got %+v, want a message and exit %d", i, evs, protocol.ExitUnavailable)
				}
			}
			if n := h.log.CountLines(tc.logged); n != server.RefusalLogBurst {
				t.Errorf("%d %q lines for 500 refusals of one uid, want %d", n, tc.logged, server.RefusalLogBurst)
			}
		})
	}
}

func TestBuildSlotIsReservedBeforeTheDecision(t *testing.T) {
	h := start(t, nil, nil)
	h.runner.started = make(chan string, 2)
	var conns []net.Conn
	for _, id := range []string{"a", "b"} {
		c := h.dial()
		c.Write(request(id, "sleep"))
		<-h.runner.started
		conns = append(conns, c)
	}
	h.runner.started = nil
	h.honest("third")
	h.eng.mu.Lock()
	last := h.eng.loads[len(h.eng.loads)-1]
	h.eng.mu.Unlock()
	if last.User != 3 || last.Total != 3 {
		t.Errorf("third request saw load %+v, want 3/3", last)
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestConnectionCapsRefuseWithOneLogLineEach(t *testing.T) {
	for _, tc := range []struct {
		name    string
		total   int
		perUser int
		expect  string
	}{
		{"one uid cannot hold more than max_connections_per_user", 50, 3, "max_connections_per_user = 3"},
		{"nobody gets past max_connections", 3, 50, "max_connections = 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(c *config.Config) {
				c.Service.MaxConnections = tc.total
				c.Service.MaxConnectionsPerUser = tc.perUser
				c.Service.RequestTimeoutSec = 30
			}, nil)
			var idle []net.Conn
			for range 3 {
				idle = append(idle, h.dial())
			}
			// Wait until the server counted the three idle ones.
			waitUntil(t, "three idle connections counted", func() bool { return h.srv.Stats().Connections == 3 })
			deadline := time.Now().Add(15 * time.Second)
			for {
				evs := h.roundTrip(request("probe"))
				if len(evs) == 2 && strings.Contains(evs[0].Data, tc.expect) {
					checkRefusal(t, evs, protocol.ExitUnavailable, tc.expect)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("never refused: %+v", evs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for range 4 {
				checkRefusal(t, h.roundTrip(request("over")), protocol.ExitUnavailable, tc.expect)
			}
			if tc.perUser < tc.total {
				// alice's idle connections do not starve bob.
				c := dialAs(t, h.bob, h.sock)
				send(c, request("bob", "all"))
				if ex := exitOf(t, readEvents(t, c)); *ex.Code != 0 {
					t.Errorf("bob was refused while only alice was over her cap: %+v", ex)
				}
			}
			if n := h.log.CountLines("connection refused"); n != 5 {
				t.Errorf("%d refusal log lines, want one per refused connection (5)", n)
			}
			for _, c := range idle {
				c.Close()
			}
			deadline = time.Now().Add(15 * time.Second)
			for {
				evs := h.roundTrip(request("after", "all"))
				if *exitOf(t, evs).Code == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still refused after the idle connections closed: %+v", evs)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestShutdownGivesEveryClientAnExitEventAndRemovesTheSocket(t *testing.T) {
	baseline := runtime.NumGoroutine()
	h := start(t, func(c *config.Config) { c.Service.RequestTimeoutSec = 60 }, nil)
	h.runner.started = make(chan string, 3)
	var builds []net.Conn
	for _, id := range []string{"s1", "s2", "s3"} {
		c := h.dial()
		c.Write(request(id, "sleep"))
		<-h.runner.started
		builds = append(builds, c)
	}
	idle := h.dial()
	waitUntil(t, "the idle connection is counted", func() bool { return h.srv.Stats().Connections == 4 })
	results := make(chan []protocol.Event, 4)
	for _, c := range append(builds, idle) {
		go func() { results <- readEvents(t, c) }()
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	var cancelled, refused int
	for range 4 {
		evs := <-results
		ex := exitOf(t, evs)
		switch {
		case ex.Cancelled:
			cancelled++
		case *ex.Code == protocol.ExitUnavailable && strings.Contains(evs[0].Data, "shutting down"):
			refused++
		default:
			t.Errorf("unexpected end %+v", evs)
		}
	}
	if cancelled != 3 || refused != 1 {
		t.Errorf("cancelled %d refused %d, want 3 and 1", cancelled, refused)
	}
	if _, err := os.Lstat(h.sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after shutdown: %v", err)
	}
	// Serve has returned: none of its goroutines may be left.
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after shutdown, %d before start:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReloadFailureKeepsTheOldGenerationAndSuccessSwapsIt(t *testing.T) {
	var fail bool
	eng2 := &fakeEngine{rev: "rev-2"}
	var h *harness
	h = start(t, nil, func(context.Context) (*server.Generation, error) {
		if fail {
			return nil, errors.New("policy.rego:3: rego_parse_error: unexpected eof")
		}
		cfg := testConfig()
		return &server.Generation{Config: cfg, Mapper: fakeMapper{}, Engine: eng2}, nil
	})
	fail = true
	if err := h.srv.Reload(context.Background()); err == nil {
		t.Fatal("a broken reload succeeded")
	}
	if !strings.Contains(h.log.String(), "reload failed") || !strings.Contains(h.log.String(), "rego_parse_error") {
		t.Errorf("log does not say the reload failed:\n%s", h.log)
	}
	h.honest("still-old")
	if len(h.eng.loads) != 1 || len(eng2.loads) != 0 {
		t.Errorf("old engine decided %d, new %d; want 1 and 0", len(h.eng.loads), len(eng2.loads))
	}
	fail = false
	if err := h.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.honest("new")
	if len(eng2.loads) != 1 {
		t.Errorf("the new engine did not decide")
	}
	if !strings.Contains(h.log.String(), "policy_revision=rev-2") {
		t.Errorf("log does not name the new revision:\n%s", h.log)
	}
}

func TestListenPathSocketSetup(t *testing.T) {
	testenv.EnsureUsers(t)
	team := testenv.GroupID(t, testenv.GroupShared)
	t.Run("creates a missing parent 0755 and applies group and mode after a 0600 bind", func(t *testing.T) {
		path := filepath.Join(sockDir(t), "run", "build-service", "s.sock")
		l, err := server.ListenPath(server.SocketSpec{Path: path, Group: testenv.GroupShared, Mode: 0o660})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 || int(st.Gid) != team {
			t.Errorf("socket mode %v gid %d, want socket 0660 gid %d", fi.Mode(), st.Gid, team)
		}
		di, _ := os.Stat(filepath.Dir(path))
		if di.Mode().Perm() != 0o755 {
			t.Errorf("parent mode %v, want 0755", di.Mode())
		}
	})
	t.Run("refuses to delete a regular file at the socket path", func(t *testing.T) {
		path := filepath.Join(sockDir(t), "s.sock")
		os.WriteFile(path, []byte("precious"), 0o644)
		_, err := server.ListenPath(server.SocketSpec{Path: path, Mode: 0o660})
		if !errors.Is(err, server.ErrNotSocket) || !strings.Contains(err.Error(), "refusing to replace") {
			t.Errorf("err = %v, want ErrNotSocket", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "precious" {
			t.Errorf("the file was touched")
		}
	})
	t.Run("refuses a directory at the socket path", func(t *testing.T) {
		path := filepath.Join(sockDir(t), "s.sock")
		os.Mkdir(path, 0o755)
		if _, err := server.ListenPath(server.SocketSpec{Path: path, Mode: 0o660}); !errors.Is(err, server.ErrNotSocket) {
			t.Errorf("err = %v, want ErrNotSocket", err)
		}
	})
	t.Run("replaces a stale socket nobody listens on", func(t *testing.T) {
		path := filepath.Join(sockDir(t), "s.sock")
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		old.SetUnlinkOnClose(false)
		old.Close()
		l, err := server.ListenPath(server.SocketSpec{Path: path, Mode: 0o600})
		if err != nil {
			t.Fatalf("stale socket: %v", err)
		}
		l.Close()
	})
	t.Run("refuses a socket another process answers on", func(t *testing.T) {
		path := filepath.Join(sockDir(t), "s.sock")
		live, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		if _, err := server.ListenPath(server.SocketSpec{Path: path, Mode: 0o600}); !errors.Is(err, server.ErrInUse) {
			t.Errorf("err = %v, want ErrInUse", err)
		}
	})
	t.Run("names a socket_group that does not exist", func(t *testing.T) {
		path := filepath.Join(sockDir(t), "s.sock")
		_, err := server.ListenPath(server.SocketSpec{Path: path, Group: "bs-no-such-group", Mode: 0o660})
		if !errors.Is(err, server.ErrNoGroup) || !strings.Contains(err.Error(), "bs-no-such-group") {
			t.Errorf("err = %v, want ErrNoGroup naming the group", err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a socket was left behind")
		}
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
