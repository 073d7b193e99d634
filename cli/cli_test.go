package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/build-service/build-service/protocol"
)

type result struct {
	code           int
	stdout, stderr string
}

const testCwd = "/home/alice/project dir"

// runCLI runs Main in-process against the environment env (nothing of the
// test process's own environment leaks in).
func runCLI(t *testing.T, args []string, env map[string]string, sigs <-chan os.Signal) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, IO{
		Stdout: &stdout,
		Stderr: &stderr,
		LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
		Getwd:   func() (string, error) { return testCwd, nil },
		Signals: sigs,
	})
	return result{code, stdout.String(), stderr.String()}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want Options
		err  string
	}{
		{name: "make flags after the command need no --", args: []string{"make", "-C", "x", "-j4"},
			want: Options{Command: "make", Args: []string{"-C", "x", "-j4"}}},
		{name: "build-cli's own options after the command go to the command", args: []string{"make", "--socket", "/s", "--timeout=1"},
			want: Options{Command: "make", Args: []string{"--socket", "/s", "--timeout=1"}}},
		{name: "options before the command are build-cli's", args: []string{"--socket", "/s", "--timeout", "30", "--request-id=r-1", "make", "all"},
			want: Options{Socket: "/s", TimeoutSec: ptr(30), RequestID: "r-1", Command: "make", Args: []string{"all"}}},
		{name: "an explicit -- ends build-cli's options", args: []string{"--socket=/s", "--", "make", "--", "-x"},
			want: Options{Socket: "/s", Command: "make", Args: []string{"--", "-x"}}},
		{name: "a command may start with a dash after --", args: []string{"--", "-weird"},
			want: Options{Command: "-weird", Args: []string{}}},
		{name: "a zero timeout is passed on for the daemon to refuse", args: []string{"--timeout=0", "make"},
			want: Options{TimeoutSec: ptr(0), Command: "make", Args: []string{}}},
		{name: "--version needs no command", args: []string{"--version"}, want: Options{Version: true}},
		{name: "an unknown option before the command is an error", args: []string{"-j4", "make"}, err: `unknown option "-j4": options go before the command`},
		{name: "no command is an error", args: []string{"--socket", "/s"}, err: "no command given"},
		{name: "nothing at all is an error", args: nil, err: "no command given"},
		{name: "an option without its value is an error", args: []string{"--socket"}, err: "option --socket needs a value"},
		{name: "a timeout that is not whole seconds is an error", args: []string{"--timeout", "5m", "make"}, err: `option --timeout wants whole seconds, not "5m"`},
		{name: "a request id with a space is an error", args: []string{"--request-id", "a b", "make"}, err: "option --request-id wants 1-128 printable ASCII characters without spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.args)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("got %v, want error %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Args == nil {
				got.Args = []string{}
			}
			if tt.want.Args == nil {
				tt.want.Args = []string{}
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSocketPathPrefersFlagThenEnvThenDefault(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	if got := SocketPath(&Options{Socket: "/flag"}, env(map[string]string{"BUILD_SERVICE_SOCKET": "/env"})); got != "/flag" {
		t.Errorf("flag: got %s", got)
	}
	if got := SocketPath(&Options{}, env(map[string]string{"BUILD_SERVICE_SOCKET": "/env"})); got != "/env" {
		t.Errorf("env: got %s", got)
	}
	if got := SocketPath(&Options{}, env(nil)); got != DefaultSocket {
		t.Errorf("default: got %s", got)
	}
}

// The request is what a root daemon sees: it must be exactly what the
// user asked for, and carry nothing of the environment not named.
func TestRequestCarriesCwdArgvAndOnlyTheNamedEnvironment(t *testing.T) {
	secretEnv := map[string]string{
		"GITHUB_TOKEN":          "ghp_SECRETSECRETSECRET",
		"AWS_SECRET_ACCESS_KEY": "aws-SECRET",
		"MAKEFLAGS":             "-- MAKEFILES=/etc/evil",
		"LD_PRELOAD":            "/tmp/evil.so",
		"PATH":                  "/opt/secret-path/bin",
		"HOME":                  "/home/secret-home",
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantEnv map[string]string
	}{
		{name: "the default list sends the set build variables and no secret",
			env:     map[string]string{"CFLAGS": "-O2 -g", "CC": "gcc", "LANG": "C.UTF-8"},
			args:    []string{"make", "-j4", "all"},
			wantEnv: map[string]string{"CFLAGS": "-O2 -g", "CC": "gcc", "LANG": "C.UTF-8"}},
		{name: "BUILD_SERVICE_ENV replaces the default list",
			env:     map[string]string{"BUILD_SERVICE_ENV": " FOO , CC,,", "FOO": "bar", "CC": "clang", "CFLAGS": "-O3"},
			args:    []string{"make"},
			wantEnv: map[string]string{"FOO": "bar", "CC": "clang"}},
		{name: "an empty BUILD_SERVICE_ENV sends no variable at all",
			env:  map[string]string{"BUILD_SERVICE_ENV": "", "CFLAGS": "-O2"},
			args: []string{"make"}},
		{name: "naming a secret sends that one variable only because the user asked",
			env:     map[string]string{"BUILD_SERVICE_ENV": "MAKEFLAGS"},
			args:    []string{"make"},
			wantEnv: map[string]string{"MAKEFLAGS": "-- MAKEFILES=/etc/evil"}},
		{name: "arguments with spaces, quotes, globs, newlines and empty strings arrive verbatim",
			env:  map[string]string{},
			args: []string{"make", "", "a b", `"q'`, "*.c", "x\ny", "$(shell id)", "--", "-C"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan *daemonConn, 1)
			d := startDaemon(t, func(c *daemonConn) {
				got <- c
				c.send(exitEv(0))
			})
			env := map[string]string{}
			for k, v := range secretEnv {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			res := runCLI(t, append([]string{"--socket", d.path}, tt.args...), env, nil)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			c := <-got
			if c.Err != nil {
				t.Fatalf("the strict decoder refused what build-cli sent: %v\n%s", c.Err, c.Raw)
			}
			for name, secret := range secretEnv {
				if _, asked := tt.wantEnv[name]; !asked && bytes.Contains(c.Raw, []byte(secret)) {
					t.Fatalf("%s leaked into the request: %s", name, c.Raw)
				}
			}
			r := c.Req
			if r.SchemaVersion != "1" || r.Type != "build" || r.Command != tt.args[0] || r.Cwd != testCwd {
				t.Fatalf("request header: %+v", r)
			}
			if !reflect.DeepEqual(r.Args, tt.args[1:]) {
				t.Fatalf("args: got %q want %q", r.Args, tt.args[1:])
			}
			if len(tt.wantEnv) == 0 && r.Env != nil || len(tt.wantEnv) > 0 && !reflect.DeepEqual(r.Env, tt.wantEnv) {
				t.Fatalf("env: got %v want %v", r.Env, tt.wantEnv)
			}
			if !strings.HasPrefix(r.RequestID, "cli-") || r.TimeoutSec != nil {
				t.Fatalf("request id %q timeout %v", r.RequestID, r.TimeoutSec)
			}
		})
	}
}

func TestRequestCarriesTimeoutAndRequestID(t *testing.T) {
	got := make(chan *protocol.Request, 1)
	d := startDaemon(t, func(c *daemonConn) { got <- c.Req; c.send(exitEv(0)) })
	res := runCLI(t, []string{"--timeout", "-3", "--request-id", "r-42", "make"}, map[string]string{"BUILD_SERVICE_SOCKET": d.path}, nil)
	if res.code != 0 {
		t.Fatalf("exit %d %q", res.code, res.stderr)
	}
	r := <-got
	if r == nil || r.TimeoutSec == nil || *r.TimeoutSec != -3 || r.RequestID != "r-42" {
		t.Fatalf("request %+v", r)
	}
}

func TestBadEnvironmentListIsRefusedBeforeConnecting(t *testing.T) {
	res := runCLI(t, []string{"--socket", "/nonexistent/sock", "make"}, map[string]string{"BUILD_SERVICE_ENV": "CFLAGS,NOT-A-NAME"}, nil)
	want := "build-cli: BUILD_SERVICE_ENV: \"NOT-A-NAME\" is not a valid variable name\n"
	if res.code != 125 || res.stderr != want {
		t.Fatalf("exit %d stderr %q, want 125 %q", res.code, res.stderr, want)
	}
}

func TestArgumentsThatAreNotUTF8AreRefusedNotMangled(t *testing.T) {
	res := runCLI(t, []string{"--socket", "/nonexistent/sock", "make", "ok", "caf\xe9"}, nil, nil)
	want := "build-cli: cannot send this request: args[1] is not valid UTF-8\n"
	if res.code != 125 || res.stderr != want {
		t.Fatalf("exit %d stderr %q, want 125 %q", res.code, res.stderr, want)
	}
}

func TestRelaysOutputAndExitCodes(t *testing.T) {
	timedOut := protocol.ExitEvent(124, true)
	sigint := protocol.ExitEvent(130, false)
	sigint.Signal = "INT"
	denyErr, denyExit := protocol.DeniedEvents([]string{"-C ../.. leaves the workspace /ws/alice", "command \"rm\" is not allowed"})
	startErr := protocol.OutputEvent(protocol.EventStderr, "build-service: could not start make: permission denied\n")
	startErr.StartError = true
	startExit := protocol.ExitEvent(127, false)
	startExit.StartError = true
	startExit.Reasons = []string{"fork/exec /usr/bin/make: permission denied"}
	deniedNoReasons := protocol.ExitEvent(126, false)
	deniedNoReasons.Denied = true
	out := func(s string) protocol.Event { return protocol.OutputEvent(protocol.EventStdout, s) }
	errEv := func(s string) protocol.Event { return protocol.OutputEvent(protocol.EventStderr, s) }

	tests := []struct {
		name       string
		events     []protocol.Event
		raw        string // sent after events
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "a successful build relays stdout and stderr byte-exact and exits 0",
			events:     []protocol.Event{out("gcc -c a.c\n"), errEv("warning: ‘x’ unused\n"), out("ok 日本 😀\n"), exitEv(0)},
			wantCode:   0,
			wantStdout: "gcc -c a.c\nok 日本 😀\n", wantStderr: "warning: ‘x’ unused\n"},
		{name: "a failing build passes make's exit code 2 through",
			events:   []protocol.Event{errEv("make: *** [all] Error 1\n"), exitEv(2)},
			wantCode: 2, wantStderr: "make: *** [all] Error 1\n"},
		{name: "a timeout exits 124 and adds no line of build-cli's own",
			events:   []protocol.Event{errEv("build-service: timed out after 1 s\n"), timedOut},
			wantCode: 124, wantStderr: "build-service: timed out after 1 s\n"},
		{name: "a build that itself exits 125 passes through silently",
			events:   []protocol.Event{exitEv(125)},
			wantCode: 125},
		{name: "a build that itself exits 126 is not a denial",
			events:   []protocol.Event{exitEv(126)},
			wantCode: 126},
		{name: "a denial prints one line of reasons, not the daemon's line too",
			events:   []protocol.Event{denyErr, denyExit},
			wantCode: 126, wantStderr: "build-cli: denied: -C ../.. leaves the workspace /ws/alice; command \"rm\" is not allowed\n"},
		{name: "a denial without reasons uses the daemon's marked line",
			events:   []protocol.Event{denyErr, deniedNoReasons},
			wantCode: 126, wantStderr: "build-cli: denied: build-service: denied: -C ../.. leaves the workspace /ws/alice; command \"rm\" is not allowed\n"},
		{name: "a denial with nothing to say still says it was denied",
			events:   []protocol.Event{deniedNoReasons},
			wantCode: 126, wantStderr: "build-cli: denied: no reason given\n"},
		{name: "a denial whose stderr line is unmarked (an older daemon) shows both",
			events:   []protocol.Event{errEv("build-service: denied: nope\n"), denyExit},
			wantCode: 126, wantStderr: "build-service: denied: nope\nbuild-cli: denied: -C ../.. leaves the workspace /ws/alice; command \"rm\" is not allowed\n"},
		{name: "a command that cannot start exits 127 with one line",
			events:   []protocol.Event{startErr, startExit},
			wantCode: 127, wantStderr: "build-cli: could not start make: fork/exec /usr/bin/make: permission denied\n"},
		{name: "a build killed by SIGINT exits 130",
			events:   []protocol.Event{out("partial"), sigint},
			wantCode: 130, wantStdout: "partial"},
		{name: "a reason with a newline cannot forge a second line",
			events: []protocol.Event{func() protocol.Event {
				e := exitEv(126)
				e.Denied = true
				e.Reasons = []string{"a\nbuild-cli: all good"}
				return e
			}()},
			wantCode: 126, wantStderr: "build-cli: denied: a build-cli: all good\n"},
		{name: "an event type this client does not know is skipped",
			raw:      `{"type":"progress","percent":50}` + "\n" + `{"type":"exit","code":0,"timed_out":false}` + "\n",
			wantCode: 0},
		{name: "the daemon closing before the exit event is 125",
			events:   []protocol.Event{out("half")},
			wantCode: 125, wantStdout: "half", wantStderr: "build-cli: build-service unreachable at SOCKET: connection closed before the exit event\n"},
		{name: "the daemon closing in the middle of an event is 125",
			raw:      `{"type":"stdout","da`,
			wantCode: 125, wantStderr: "build-cli: build-service unreachable at SOCKET: connection closed in the middle of event 1\n"},
		{name: "a garbage reply is a protocol error",
			raw:      "HTTP/1.1 400 Bad Request\r\n\r\n",
			wantCode: 125, wantStderr: "build-cli: protocol error: event 1: event is not a JSON object: invalid character 'H' looking for beginning of value\n"},
		{name: "an exit event without a code is a protocol error",
			raw:      `{"type":"exit","timed_out":false}` + "\n",
			wantCode: 125, wantStderr: "build-cli: protocol error: event 1: exit event has no code\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t, func(c *daemonConn) {
				if c.Err != nil {
					t.Errorf("request refused: %v", c.Err)
					return
				}
				c.send(tt.events...)
				if tt.raw != "" {
					c.sendRaw(tt.raw)
				}
			})
			res := runCLI(t, []string{"--socket", d.path, "make"}, nil, nil)
			wantStderr := strings.ReplaceAll(tt.wantStderr, "SOCKET", d.path)
			if res.code != tt.wantCode || res.stdout != tt.wantStdout || res.stderr != wantStderr {
				t.Fatalf("got exit %d\nstdout %q\nstderr %q\nwant exit %d\nstdout %q\nstderr %q",
					res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, wantStderr)
			}
		})
	}
}

func TestUnreachableDaemonIs125WithOneLine(t *testing.T) {
	dir := t.TempDir()
	t.Run("no socket file", func(t *testing.T) {
		res := runCLI(t, []string{"--socket", dir + "/missing.sock", "make"}, nil, nil)
		want := "build-cli: build-service unreachable at " + dir + "/missing.sock: connect: no such file or directory\n"
		if res.code != 125 || res.stderr != want {
			t.Fatalf("exit %d stderr %q want %q", res.code, res.stderr, want)
		}
	})
	t.Run("a regular file where the socket should be", func(t *testing.T) {
		if err := os.WriteFile(dir+"/file", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		res := runCLI(t, []string{"--socket", dir + "/file", "make"}, nil, nil)
		want := "build-cli: build-service unreachable at " + dir + "/file: connect: connection refused\n"
		if res.code != 125 || res.stderr != want {
			t.Fatalf("exit %d stderr %q want %q", res.code, res.stderr, want)
		}
	})
}

func TestRelaysA10MiBLine(t *testing.T) {
	line := strings.Repeat("0123456789abcdef", 10<<20/16) + "\n"
	d := startDaemon(t, func(c *daemonConn) {
		c.send(protocol.OutputEvent(protocol.EventStdout, line), exitEv(0))
	})
	res := runCLI(t, []string{"--socket", d.path, "make"}, nil, nil)
	if res.code != 0 || res.stdout != line || res.stderr != "" {
		t.Fatalf("exit %d, stdout %d bytes (want %d), stderr %q", res.code, len(res.stdout), len(line), res.stderr)
	}
}

func TestAnEventOverTheLimitIsAProtocolErrorNotUnboundedMemory(t *testing.T) {
	d := startDaemon(t, func(c *daemonConn) {
		// One line longer than MaxEventBytes, written in pieces; the client
		// stops reading, so the write fails once it hangs up.
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		c.c.Write([]byte(`{"type":"stdout","data":"`))
		for i := 0; i <= protocol.MaxEventBytes>>20; i++ {
			if _, err := c.c.Write(chunk); err != nil {
				return
			}
		}
	})
	res := runCLI(t, []string{"--socket", d.path, "make"}, nil, nil)
	want := "build-cli: protocol error: event 1 is longer than 67108864 bytes\n"
	if res.code != 125 || res.stderr != want {
		t.Fatalf("exit %d stderr %q want %q", res.code, res.stderr, want)
	}
}

func TestForwardsSignalsAsControlLines(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		name := protocol.SignalName(sig)
		t.Run("forwards "+name+" and exits with the build's 128+N", func(t *testing.T) {
			sigs := make(chan os.Signal, 1)
			got := make(chan string, 1)
			d := startDaemon(t, func(c *daemonConn) {
				c.send(protocol.OutputEvent(protocol.EventStdout, "building\n"))
				sigs <- sig // the user presses Ctrl-C while the build runs
				ctl, err := c.control()
				if err != nil {
					got <- "error: " + err.Error()
					return
				}
				got <- ctl.Signal
				ev := protocol.ExitEvent(protocol.ExitCodeForSignal(int(sig)), false)
				ev.Signal = ctl.Signal
				c.send(ev)
			})
			res := runCLI(t, []string{"--socket", d.path, "make"}, nil, sigs)
			if g := <-got; g != name {
				t.Fatalf("daemon got control %q, want %q", g, name)
			}
			if want := 128 + int(sig); res.code != want || res.stdout != "building\n" || res.stderr != "" {
				t.Fatalf("exit %d stdout %q stderr %q, want %d", res.code, res.stdout, res.stderr, want)
			}
		})
	}
}

func TestGivesUpAfterThreeSignalsAndDisconnects(t *testing.T) {
	sigs := make(chan os.Signal, 3)
	eof := make(chan error, 1)
	d := startDaemon(t, func(c *daemonConn) {
		for i := 0; i < 3; i++ {
			sigs <- syscall.SIGINT
		}
		// A daemon whose build ignores INT: read the two forwarded lines,
		// then the client must hang up (EOF), never half-close first.
		for i := 0; i < 2; i++ {
			if _, err := c.control(); err != nil {
				eof <- err
				return
			}
		}
		_, err := c.control()
		eof <- err
	})
	res := runCLI(t, []string{"--socket", d.path, "make"}, nil, sigs)
	want := "build-cli: no exit from build-service after 3 signals; disconnected, the build is being cancelled\n"
	if res.code != 130 || res.stderr != want {
		t.Fatalf("exit %d stderr %q, want 130 %q", res.code, res.stderr, want)
	}
	if err := <-eof; !errors.Is(err, io.EOF) {
		t.Fatalf("daemon saw %v after the third signal, want EOF", err)
	}
}

func TestSignalBeforeTheRequestIsSentRunsNothing(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGINT
	got := make(chan *daemonConn, 1)
	d := startDaemon(t, func(c *daemonConn) { got <- c })
	res := runCLI(t, []string{"--socket", d.path, "make"}, nil, sigs)
	if res.code != 130 {
		t.Fatalf("exit %d %q", res.code, res.stderr)
	}
	if c := <-got; c.Raw != nil || !errors.Is(c.Err, io.EOF) {
		t.Fatalf("daemon got a request %q (%v)", c.Raw, c.Err)
	}
}

func TestUsageAndVersion(t *testing.T) {
	res := runCLI(t, []string{"--bogus"}, nil, nil)
	if res.code != 125 || res.stderr != "build-cli: unknown option \"--bogus\": options go before the command (see build-cli --help)\n" {
		t.Fatalf("exit %d stderr %q", res.code, res.stderr)
	}
	res = runCLI(t, []string{"--help"}, nil, nil)
	if res.code != 0 || !strings.HasPrefix(res.stdout, "usage: build-cli") {
		t.Fatalf("help: exit %d stdout %q", res.code, res.stdout)
	}
	res = runCLI(t, []string{"--version"}, nil, nil)
	if res.code != 0 || !strings.HasPrefix(res.stdout, "build-cli ") || strings.Count(res.stdout, "\n") != 1 {
		t.Fatalf("version: exit %d stdout %q", res.code, res.stdout)
	}
}

func TestADaemonThatRefusesBeforeReadingIsHeardNotABrokenPipe(t *testing.T) {
	path := t.TempDir() + "/build.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		// Over the connection cap: explain, then close without reading.
		ev := protocol.ExitEvent(125, false)
		protocol.WriteEvent(c, protocol.OutputEvent(protocol.EventStderr, "build-service: too many connections for uid 1000 (limit 4)\n"))
		protocol.WriteEvent(c, ev)
		c.Close()
	}()
	testHookBeforeSend = func() { <-closed }
	defer func() { testHookBeforeSend = nil }()
	res := runCLI(t, []string{"--socket", path, "make"}, nil, nil)
	if res.code != 125 || res.stderr != "build-service: too many connections for uid 1000 (limit 4)\n" {
		t.Fatalf("exit %d stderr %q", res.code, res.stderr)
	}
}
