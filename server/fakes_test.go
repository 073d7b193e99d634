package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/engine"
	"github.com/build-service/build-service/executor"
	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/mapper"
	"github.com/build-service/build-service/protocol"
	"github.com/build-service/build-service/server"
)

// The in-process tests drive the real server (real sockets, real peer
// credentials, real framing and accounting) with stand-ins for the mapper,
// the engine and the executor, so they test the server's own rules. The
// daemon tests (daemon_test.go) run the real binary with the real packages.

type fakeMapper struct{}

func (fakeMapper) Map(_ context.Context, _ mapper.Caller, req protocol.Request) (*mapper.Facts, error) {
	f := &mapper.Facts{
		Cwd:  mapper.CwdFacts{Container: req.Cwd, Host: req.Cwd, Resolved: req.Cwd, Mapped: true, Inside: true, IsDir: true},
		Make: &mapper.MakeFacts{Argv: append([]string{"--canonical"}, req.Args...)},
	}
	// The mapper leaves Argv empty when a path make needs could not be
	// resolved; "unrenderable" stands in for such an argument.
	for _, a := range req.Args {
		if a == "unrenderable" {
			f.Make.Argv = []string{}
		}
		// "cdir" stands in for a -C the mapper resolved to /var/tmp.
		if a == "cdir" {
			f.Make.Argv = []string{"--directory=/var/tmp", "--", "all"}
			f.Make.EffectiveDir, f.Make.EffectiveIsDir = "/var/tmp", true
		}
		// "cmissing" stands in for a -C that does not exist (yet).
		if a == "cmissing" {
			f.Make.Argv = []string{"--directory=/var/tmp/missing", "--", "all"}
			f.Make.EffectiveDir = "/var/tmp/missing"
		}
	}
	return f, nil
}

// fakeEngine allows everything except args containing "deny", and records
// the load each decision saw.
type fakeEngine struct {
	rev string

	mu    sync.Mutex
	loads []engine.Load
}

func (e *fakeEngine) Revision() string { return e.rev }

func (e *fakeEngine) Decide(_ context.Context, f engine.Facts) engine.Decision {
	e.mu.Lock()
	e.loads = append(e.loads, f.Load)
	e.mu.Unlock()
	d := engine.Decision{
		Allow:      true,
		TimeoutSec: 60,
		Env:        map[string]string{"PATH": "/usr/bin:/bin", "SECRET": "hunter2"},
		Identity:   engine.Identity{UID: f.Peer.UID, GID: f.Peer.GID, Groups: f.Peer.Groups, GIDAllowed: true},
		DecisionID: "dec-" + f.Request.RequestID,
		Revision:   e.rev,
	}
	if f.Request.TimeoutSec != nil {
		d.TimeoutSec = *f.Request.TimeoutSec
	}
	for _, a := range f.Request.Args {
		if a == "deny" {
			d.Allow = false
			d.Reasons = []string{"args may not say deny", "second reason"}
		}
	}
	return d
}

// fakeRunner "builds" by echoing its job; an arg "sleep" makes it wait for
// cancellation (or a signal, which it reports as death by that signal).
type fakeRunner struct {
	mu   sync.Mutex
	jobs []executor.Job
	// started gets one value per job that began.
	started chan string
	// signals counts what reached a "sleep-ignoring-signals" job.
	signals int
}

func (r *fakeRunner) Mode() string { return "fake" }

func (r *fakeRunner) Run(ctx context.Context, job executor.Job, emit func(protocol.Event) error, signals <-chan syscall.Signal) executor.Result {
	r.mu.Lock()
	r.jobs = append(r.jobs, job)
	r.mu.Unlock()
	if r.started != nil {
		r.started <- job.ID
	}
	emit(protocol.OutputEvent(protocol.EventStdout, "ran "+strings.Join(job.Args, " ")+"\n"))
	for _, a := range job.Args {
		if a == "sleep-ignoring-signals" {
			for {
				select {
				case <-ctx.Done():
					return executor.Result{Code: 143, ExitCode: -1, Signal: "SIGTERM", Cancelled: true}
				case <-signals:
					r.mu.Lock()
					r.signals++
					r.mu.Unlock()
				case <-time.After(job.Timeout):
					return executor.Result{Code: 124, TimedOut: true}
				}
			}
		}
		if a == "sleep" {
			select {
			case <-ctx.Done():
				return executor.Result{Code: 143, ExitCode: -1, Signal: "SIGTERM", Cancelled: true}
			case sig := <-signals:
				return executor.Result{Code: 128 + int(sig), ExitCode: -1, Signal: sig.String()}
			case <-time.After(job.Timeout):
				return executor.Result{Code: 124, TimedOut: true}
			}
		}
	}
	return executor.Result{Code: 0, Duration: time.Millisecond}
}

type harness struct {
	t      *testing.T
	alice  testenv.User
	bob    testenv.User
	sock   string
	srv    *server.Server
	log    *testenv.LogBuffer
	runner *fakeRunner
	eng    *fakeEngine
	cancel context.CancelFunc
	done   chan error
}

func testConfig() *config.Config {
	cfg := config.Default()
	cfg.Build.Commands = map[string]string{"make": "/usr/bin/make"}
	cfg.Service.RequestTimeoutSec = 2
	cfg.Service.MaxConnections = 20
	cfg.Service.MaxConnectionsPerUser = 10
	cfg.Service.ShutdownGraceSec = 1
	cfg.Build.Timeouts.MaxSec = 100
	cfg.Build.Timeouts.KillGraceSec = 1
	return cfg
}

func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bs-server-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func start(t *testing.T, mutate func(*config.Config), reload server.Loader) *harness {
	t.Helper()
	cfg := testConfig()
	cfg.Service.SocketPath = filepath.Join(sockDir(t), "bs.sock")
	cfg.Service.SocketMode = "0666"
	if mutate != nil {
		mutate(cfg)
	}
	alice, bob := testenv.EnsureUsers(t)
	h := &harness{alice: alice, bob: bob, t: t, sock: cfg.Service.SocketPath, log: &testenv.LogBuffer{}, runner: &fakeRunner{}, eng: &fakeEngine{rev: "rev-1"}}
	logger, _, err := server.NewLogger(config.Logging{Console: true, Level: "debug"}, h.log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{
		Logger:   logger,
		Gen:      &server.Generation{Config: cfg, Mapper: fakeMapper{}, Engine: h.eng},
		Reload:   reload,
		Executor: h.runner,
		Version:  "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- srv.Serve(ctx) }()
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *harness) stop() error {
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatal("server did not stop within 30 s")
		return nil
	}
}

// dial connects as bs-alice (root callers are refused by design).
func (h *harness) dial() *net.UnixConn {
	h.t.Helper()
	return dialAs(h.t, h.alice, h.sock)
}

// readEvents reads events until the server closes the connection.
func readEvents(t *testing.T, c net.Conn) []protocol.Event {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var evs []protocol.Event
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		ev, err := protocol.DecodeEvent(sc.Bytes())
		if err != nil {
			t.Fatalf("bad event %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	// A socket closed with our unread bytes in it reads as ECONNRESET on
	// Linux once its queued events are read: fine after the exit event.
	if err := sc.Err(); err != nil && !(errors.Is(err, syscall.ECONNRESET) && len(evs) > 0 && evs[len(evs)-1].Type == protocol.EventExit) {
		t.Fatalf("reading events: %v (got %+v)", err, evs)
	}
	return evs
}

func exitOf(t *testing.T, evs []protocol.Event) protocol.Event {
	t.Helper()
	if len(evs) == 0 || evs[len(evs)-1].Type != protocol.EventExit {
		t.Fatalf("no final exit event in %+v", evs)
	}
	for _, ev := range evs[:len(evs)-1] {
		if ev.Type == protocol.EventExit {
			t.Fatalf("exit event before the end: %+v", evs)
		}
	}
	return evs[len(evs)-1]
}

func request(id string, args ...string) []byte {
	if args == nil {
		args = []string{}
	}
	b, _ := json.Marshal(map[string]any{"schema_version": "1", "request_id": id, "command": "make", "args": args, "cwd": "/tmp"})
	return append(b, '\n')
}

// roundTrip sends raw bytes and returns the events.
func (h *harness) roundTrip(raw []byte) []protocol.Event {
	h.t.Helper()
	c := h.dial()
	send(c, raw)
	return readEvents(h.t, c)
}

func (h *harness) honest(id string) {
	h.t.Helper()
	evs := h.roundTrip(request(id, "all"))
	ex := exitOf(h.t, evs)
	if *ex.Code != 0 || len(evs) != 2 || evs[0].Data != "ran --canonical all\n" {
		h.t.Fatalf("honest request %s: %+v", id, evs)
	}
}

// send writes raw in the background: the server may refuse and close
// before it has read everything (a broken pipe is then expected).
func send(c net.Conn, raw []byte) {
	if len(raw) > 0 {
		go c.Write(raw)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
