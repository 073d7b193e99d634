// Package server owns the daemon's socket and connection lifecycle: socket
// setup (or systemd socket activation), the accept loop, the peer's identity
// (bound once at accept from SO_PEERCRED, never from the request body),
// per-connection reading with bounds and deadlines, connection and build
// accounting, hot reload, graceful shutdown and sd_notify.
//
// It must not decide (the engine does), parse make's command line (the
// mapper does) or start processes (the executor does); it wires them in the
// order DESIGN.md fixes and enforces the invariants that hold whatever a
// policy says.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/build-service/build-service/account"
	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/engine"
	"github.com/build-service/build-service/executor"
	"github.com/build-service/build-service/mapper"
	"github.com/build-service/build-service/protocol"
)

// Decider is what the server needs of *engine.Engine.
type Decider interface {
	Decide(ctx context.Context, f engine.Facts) engine.Decision
	Revision() string
}

// Mapper is what the server needs of *mapper.Mapper.
type Mapper interface {
	Map(ctx context.Context, c mapper.Caller, req protocol.Request) (*mapper.Facts, error)
}

// Runner is what the server needs of *executor.Executor.
type Runner interface {
	Run(ctx context.Context, job executor.Job, emit func(protocol.Event) error, signals <-chan syscall.Signal) executor.Result
	Mode() string
}

// Generation is one consistent set of config, mapper and engine. A reload
// builds a new one and swaps it in whole; a connection keeps the generation
// it started with until it ends.
type Generation struct {
	Config *config.Config
	Mapper Mapper
	Engine Decider
	// Close releases the generation (the engine's decision log); called
	// once no connection uses it any more. May be nil.
	Close func() error

	refs atomic.Int64
}

// Loader builds a fresh generation (config and policies from disk).
type Loader func(ctx context.Context) (*Generation, error)

// Options configure a Server.
type Options struct {
	Logger   zerolog.Logger
	Gen      *Generation
	Reload   Loader // nil: SIGHUP is refused with a log line
	Executor Runner
	// Accounts looks a uid up; nil means account.Lookup.
	Accounts func(uid int) (account.Account, error)
	// Listener overrides socket setup (tests); nil means activation or
	// the config's socket path.
	Listener  *net.UnixListener
	Version   string
	ConfigRef string // config path for the start line
}

// Server is the daemon. Create with New, then Run (signals) or Serve.
type Server struct {
	log      zerolog.Logger
	exec     Runner
	reload   Loader
	accounts func(uid int) (account.Account, error)
	version  string
	cfgRef   string
	notify   *notifier
	selfUID  int // euid of the daemon; non-root serves only this uid

	gen atomic.Pointer[Generation]

	ln        *net.UnixListener
	activated bool

	mu        sync.Mutex
	stopping  bool
	conns     map[*connState]struct{}
	connsUser map[int]int
	builds    int
	buildsUsr map[int]int

	refusals refusalLimiter // bounds refusal log lines per uid

	wg       sync.WaitGroup // connection goroutines
	hardCtx  context.Context
	hardStop context.CancelFunc
	reloadMu sync.Mutex
}

// New checks the options and takes the listener: the given one, the
// systemd-activated one, or a fresh socket at service.socket_path.
func New(opts Options) (*Server, error) {
	if opts.Gen == nil || opts.Gen.Config == nil || opts.Gen.Mapper == nil || opts.Gen.Engine == nil {
		return nil, errors.New("server: config, mapper and engine are required")
	}
	if opts.Executor == nil {
		return nil, errors.New("server: executor is required")
	}
	s := &Server{
		log:       opts.Logger,
		exec:      opts.Executor,
		reload:    opts.Reload,
		accounts:  opts.Accounts,
		version:   opts.Version,
		cfgRef:    opts.ConfigRef,
		notify:    newNotifier(),
		selfUID:   os.Geteuid(),
		conns:     map[*connState]struct{}{},
		connsUser: map[int]int{},
		buildsUsr: map[int]int{},
	}
	if s.accounts == nil {
		s.accounts = account.Lookup
	}
	s.hardCtx, s.hardStop = context.WithCancel(context.Background())
	opts.Gen.refs.Store(1)
	s.gen.Store(opts.Gen)

	switch {
	case opts.Listener != nil:
		s.ln = opts.Listener
	default:
		l, ok, err := ListenActivated()
		if err != nil {
			return nil, err
		}
		if ok {
			s.ln, s.activated = l, true
		} else {
			svc := opts.Gen.Config.Service
			l, err := ListenPath(SocketSpec{Path: svc.SocketPath, Group: svc.SocketGroup, Mode: svc.Mode()})
			if err != nil {
				return nil, err
			}
			s.ln = l
		}
	}
	return s, nil
}

// Addr is the socket path the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until SIGTERM or SIGINT (or ctx), reloading on SIGHUP and
// logging runtime counters on SIGUSR1.
func (s *Server) Run(ctx context.Context) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				s.Reload(ctx)
			case syscall.SIGUSR1:
				s.logStats()
			default:
				if ctx.Err() != nil {
					// A second TERM/INT: no more grace.
					s.log.Warn().Str("signal", sig.String()).Msg("second stop signal: cancelling builds now")
					s.hardStop()
					continue
				}
				s.log.Info().Str("signal", sig.String()).Msg("shutting down")
				stop()
			}
		}
	}
}

// Serve accepts connections until ctx is done, then shuts down: stop
// accepting, refuse connections still sending their request, give builds
// service.shutdown_grace_sec, cancel the rest, wait for every connection to
// get its exit event, remove the socket (unless socket-activated).
func (s *Server) Serve(ctx context.Context) error {
	gen := s.gen.Load()
	cfg := gen.Config
	s.log.Info().
		Str("version", s.version).
		Str("config", s.cfgRef).
		Str("policy_revision", gen.Engine.Revision()).
		Str("socket", s.Addr()).
		Bool("socket_activated", s.activated).
		Str("cgroup_mode", s.exec.Mode()).
		Int("uid", s.selfUID).
		Bool("dev_mode", s.selfUID != 0).
		Int("max_connections", cfg.Service.MaxConnections).
		Int("max_connections_per_user", cfg.Service.MaxConnectionsPerUser).
		Msg("build-service started")
	if s.selfUID != 0 {
		s.log.Warn().Int("uid", s.selfUID).Msg("not running as root: serving only this uid, builds run without a credential change")
	}
	if err := s.notify.send("READY=1\nSTATUS=serving"); err != nil {
		s.log.Warn().Err(err).Msg("sd_notify READY failed")
	}

	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.acceptLoop() }()

	var acceptErr error
	select {
	case <-ctx.Done():
	case acceptErr = <-acceptDone:
		s.log.Error().Err(acceptErr).Msg("accept loop failed; shutting down")
	}
	s.shutdown()
	if ctx.Err() != nil {
		<-acceptDone
	}
	return acceptErr
}

func (s *Server) acceptLoop() error {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			stopping := s.stopping
			s.mu.Unlock()
			if stopping || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				// Out of fds or a transient error: back off instead of spinning.
				s.log.Warn().Err(err).Msg("accept failed; retrying")
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

func (s *Server) shutdown() {
	s.notify.send("STOPPING=1")
	s.mu.Lock()
	s.stopping = true
	grace := time.Duration(s.gen.Load().Config.Service.ShutdownGraceSec) * time.Second
	for cs := range s.conns {
		cs.stopReading()
	}
	builds := s.builds
	s.mu.Unlock()
	// Closing the listener unlinks the socket path we created (never an
	// activated one, see ListenActivated).
	s.ln.Close()
	s.log.Info().Int("builds_in_flight", builds).Int64("grace_sec", int64(grace/time.Second)).Msg("stopped accepting; waiting for builds")

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.mu.Lock()
		n := s.builds
		s.mu.Unlock()
		s.log.Warn().Int("builds", n).Msg("shutdown grace over; cancelling builds")
		s.hardStop()
		<-done
	}
	s.hardStop()
	if g := s.gen.Swap(nil); g != nil {
		s.release(g)
	}
	s.log.Info().Msg("build-service stopped")
}

// Reload builds a new generation and swaps it in; on failure the old one
// keeps serving. Connections already running keep theirs.
func (s *Server) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.reload == nil {
		s.log.Warn().Msg("reload requested but not supported in this mode")
		return errors.New("reload: not supported")
	}
	s.notify.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	defer s.notify.send("READY=1")
	old := s.gen.Load()
	if old == nil {
		return errors.New("reload: shutting down")
	}
	ng, err := s.reload(ctx)
	if err != nil {
		s.log.Error().Err(err).Str("policy_revision", old.Engine.Revision()).Msg("reload failed; keeping the previous config and policy")
		return fmt.Errorf("reload: %w", err)
	}
	oc, nc := old.Config.Service, ng.Config.Service
	if oc.SocketPath != nc.SocketPath || oc.SocketGroup != nc.SocketGroup || oc.SocketMode != nc.SocketMode {
		s.log.Warn().Msg("service.socket_* changed: takes effect only on restart")
	}
	ng.refs.Store(1)
	if !s.gen.CompareAndSwap(old, ng) {
		s.release(ng)
		return errors.New("reload: shutting down")
	}
	s.release(old)
	s.log.Info().Str("policy_revision", ng.Engine.Revision()).Str("config", ng.Config.Path).Msg("reloaded config and policy")
	return nil
}

// acquire returns the current generation with a reference held.
func (s *Server) acquire() *Generation {
	for {
		g := s.gen.Load()
		if g == nil {
			return nil
		}
		if n := g.refs.Load(); n > 0 && g.refs.CompareAndSwap(n, n+1) {
			return g
		}
	}
}

func (s *Server) release(g *Generation) {
	if g.refs.Add(-1) == 0 && g.Close != nil {
		if err := g.Close(); err != nil {
			s.log.Warn().Err(err).Msg("closing previous policy generation")
		}
	}
}

// Stats are the server's live counters.
type Stats struct {
	Connections int // open connections past the caps check
	Builds      int // build slots taken (deciding or running)
}

// Stats returns the live counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Connections: len(s.conns), Builds: s.builds}
}

func (s *Server) logStats() {
	st := s.Stats()
	conns, builds := st.Connections, st.Builds
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.log.Info().
		Int("goroutines", runtime.NumGoroutine()).
		Int("connections", conns).
		Int("builds", builds).
		Uint64("heap_inuse", ms.HeapInuse).
		Msg("stats")
}

// admitConn counts a new connection against the caps; "" means admitted.
func (s *Server) admitConn(cs *connState, svc config.Service) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return "build-service is shutting down"
	}
	if svc.MaxConnections > 0 && len(s.conns) >= svc.MaxConnections {
		return fmt.Sprintf("too many connections (service.max_connections = %d); try again later", svc.MaxConnections)
	}
	if svc.MaxConnectionsPerUser > 0 && s.connsUser[cs.peer.UID] >= svc.MaxConnectionsPerUser {
		return fmt.Sprintf("too many connections from uid %d (service.max_connections_per_user = %d); close some and try again", cs.peer.UID, svc.MaxConnectionsPerUser)
	}
	s.conns[cs] = struct{}{}
	s.connsUser[cs.peer.UID]++
	return ""
}

func (s *Server) dropConn(cs *connState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[cs]; !ok {
		return
	}
	delete(s.conns, cs)
	if s.connsUser[cs.peer.UID]--; s.connsUser[cs.peer.UID] <= 0 {
		delete(s.connsUser, cs.peer.UID)
	}
}

// reserveBuild takes a build slot before the policy runs, so input.load
// counts requests racing in parallel; ok=false when shutting down.
func (s *Server) reserveBuild(uid int) (engine.Load, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return engine.Load{}, false
	}
	s.builds++
	s.buildsUsr[uid]++
	return engine.Load{User: s.buildsUsr[uid], Total: s.builds}, true
}

func (s *Server) releaseBuild(uid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.builds--
	if s.buildsUsr[uid]--; s.buildsUsr[uid] <= 0 {
		delete(s.buildsUsr, uid)
	}
}

func (s *Server) currentLoad(uid int) engine.Load {
	s.mu.Lock()
	defer s.mu.Unlock()
	return engine.Load{User: s.buildsUsr[uid], Total: s.builds}
}
