package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/build-service/build-service/account"
	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/engine"
	"github.com/build-service/build-service/executor"
	"github.com/build-service/build-service/mapper"
	"github.com/build-service/build-service/peercred"
	"github.com/build-service/build-service/protocol"
)

// connState is one client connection. The peer is fixed at accept.
type connState struct {
	conn *net.UnixConn
	peer engine.Peer

	mu      sync.Mutex
	reading bool // still reading the request line
	stopped bool // shutdown interrupted the request read

	wmu sync.Mutex // one writer at a time (stdout and stderr pumps)
}

// stopReading interrupts a connection that is still sending its request
// (shutdown); a connection already running a build is left alone.
func (cs *connState) stopReading() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.reading {
		cs.stopped = true
		cs.conn.SetReadDeadline(time.Now())
	}
}

func (cs *connState) send(ev protocol.Event) error {
	cs.wmu.Lock()
	defer cs.wmu.Unlock()
	return protocol.WriteEvent(cs.conn, ev)
}

// say sends a one-line human message on stderr.
func (cs *connState) say(msg string) error {
	return cs.send(stderrEvent("build-service: " + oneLine(msg) + "\n"))
}

// refuse sends a one-line message and an exit event with code, bounded in
// time so a client that does not read cannot hold the goroutine.
func (cs *connState) refuse(code int, msg string) {
	cs.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	cs.say(msg)
	cs.send(exitEvent(code, false))
}

// refuseEarly refuses a connection before its request was read: the
// refusal goes out first, then the request is drained for a moment, so a
// client that writes its request right after connecting (build-cli) is
// not answered with a broken pipe that hides the message. The drain is
// short and bounded, so a flood of refused connections cannot hold fds.
func (cs *connState) refuseEarly(code int, msg string) {
	cs.refuse(code, msg)
	cs.conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(cs.conn, protocol.MaxRequestBytes))
}

func stderrEvent(data string) protocol.Event {
	return protocol.OutputEvent(protocol.EventStderr, data)
}

func stdoutEvent(data string) protocol.Event {
	return protocol.OutputEvent(protocol.EventStdout, data)
}

func exitEvent(code int, timedOut bool) protocol.Event {
	return protocol.ExitEvent(code, timedOut)
}

// oneLine keeps a message to one line whatever an error text holds.
func oneLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// readRequestLine reads the request line with protocol.ReadLine and words
// its failures for the user.
func readRequestLine(r *bufio.Reader) ([]byte, error) {
	line, err := protocol.ReadLine(r, protocol.MaxRequestBytes)
	switch {
	case err == nil:
		return line, nil
	case errors.Is(err, protocol.ErrTooLong):
		return nil, fmt.Errorf("request line longer than %d bytes", protocol.MaxRequestBytes)
	case errors.Is(err, io.EOF):
		return nil, errors.New("empty request: the connection closed before any request line")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, errors.New("request not terminated by a newline before the connection was closed")
	}
	return nil, err
}

func (s *Server) handle(c *net.UnixConn) {
	defer c.Close()
	accepted := time.Now()
	cs := &connState{conn: c, reading: true}

	gen := s.acquire()
	if gen == nil {
		cs.refuseEarly(protocol.ExitUnavailable, "build-service is shutting down")
		return
	}
	defer s.release(gen)
	cfg := gen.Config
	reqTimeout := time.Duration(cfg.Service.RequestTimeoutSec) * time.Second
	if reqTimeout <= 0 {
		reqTimeout = 10 * time.Second
	}
	// Absolute deadline: a client dribbling a byte a second still hits it.
	c.SetReadDeadline(accepted.Add(reqTimeout))

	cred, err := peercred.Get(c)
	if err != nil {
		s.log.Error().Err(err).Msg("connection refused: cannot read peer credentials")
		cs.refuse(protocol.ExitUnavailable, "cannot read peer credentials")
		return
	}
	cs.peer = engine.Peer{UID: cred.UID, GID: cred.GID, PID: cred.PID, Groups: cred.Groups}
	if cs.peer.Groups == nil {
		cs.peer.Groups = []int{}
	}
	log := s.log.With().Int("uid", cred.UID).Int("gid", cred.GID).Int("pid", cred.PID).Logger()

	if reason := s.admitConn(cs, cfg.Service); reason != "" {
		s.logRefusal(log, cred.UID, "connection refused", reason)
		cs.refuseEarly(protocol.ExitUnavailable, reason)
		return
	}
	defer s.dropConn(cs)

	if s.selfUID != 0 && cred.UID != s.selfUID {
		reason := fmt.Sprintf("denied: this build-service runs unprivileged as uid %d and serves only that uid (you are uid %d)", s.selfUID, cred.UID)
		s.logRefusal(log, cred.UID, "connection refused", reason)
		cs.refuseEarly(protocol.ExitDenied, reason)
		return
	}

	r := bufio.NewReaderSize(c, 4096)
	line, err := readRequestLine(r)
	cs.mu.Lock()
	cs.reading = false
	stopped := cs.stopped
	cs.mu.Unlock()
	if err != nil {
		msg := "bad request: " + err.Error()
		switch {
		case stopped:
			msg = "build-service is shutting down"
		case errors.Is(err, os.ErrDeadlineExceeded):
			msg = fmt.Sprintf("bad request: no complete request line within %s", reqTimeout)
		}
		s.logRefusal(log, cred.UID, "request refused", msg)
		cs.refuse(protocol.ExitUnavailable, msg)
		return
	}
	req, err := protocol.DecodeRequest(line)
	if err != nil {
		msg := "bad request: " + err.Error()
		s.logRefusal(log, cred.UID, "request refused", msg)
		cs.refuse(protocol.ExitUnavailable, msg)
		return
	}
	if req.RequestID == "" {
		req.RequestID = newRequestID()
	}
	log = log.With().Str("request_id", req.RequestID).Logger()

	acct, err := s.accounts(cred.UID)
	if err != nil {
		log.Error().Err(err).Msg("request refused: account lookup failed")
		cs.refuse(protocol.ExitUnavailable, "internal error: account lookup failed (see the daemon log)")
		return
	}
	if acct.Known {
		log = log.With().Str("user", acct.Name).Logger()
	}

	ctx, cancel := context.WithCancel(s.hardCtx)
	defer cancel()

	switch req.Type {
	case "", protocol.TypeBuild:
		s.build(ctx, cs, r, gen, req, acct, log)
	case protocol.TypeDoctor:
		s.doctor(ctx, cs, gen, req, acct, log)
	default:
		msg := fmt.Sprintf("bad request: unsupported request type %q", req.Type)
		s.logRefusal(log, cred.UID, "request refused", msg)
		cs.refuse(protocol.ExitUnavailable, msg)
	}
}

// newRequestID names a request whose client sent none, so its log lines
// can still be told apart.
func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return "srv-" + hex.EncodeToString(b[:])
}

func engineAccount(a account.Account) engine.Account {
	groups := a.Groups
	if groups == nil {
		groups = []int{}
	}
	return engine.Account{Known: a.Known, Name: a.Name, Home: a.Home, UID: a.UID, GID: a.GID, Groups: groups, GroupNames: a.GroupNames}
}

// facts maps the request and puts together what the engine decides on.
func (s *Server) facts(ctx context.Context, cs *connState, gen *Generation, req *protocol.Request, acct account.Account, load engine.Load) (engine.Facts, error) {
	return Facts(ctx, gen, *req, cs.peer, acct, load)
}

// Facts puts together what the engine decides on for one request: the
// peer as the kernel reported it, the host account, and the mapper's facts
// (resolved with the identity the build would run with, so the walk sees
// exactly what the build could see). explain uses it too, so a dry run sees
// what the daemon would.
func Facts(ctx context.Context, gen *Generation, req protocol.Request, peer engine.Peer, acct account.Account, load engine.Load) (engine.Facts, error) {
	ea := engineAccount(acct)
	if peer.Groups == nil {
		peer.Groups = []int{}
	}
	f := engine.Facts{Request: req, Peer: peer, Account: ea, Load: load}
	if !acct.Known {
		// No name to put into the path templates: the policy denies an
		// unknown account, and without facts every confinement rule does.
		return f, nil
	}
	id := engine.ComputeIdentity(peer, ea, gen.Config.Build.Identity.DenyGroups)
	caller := mapper.Caller{Name: acct.Name, UID: id.UID, GID: id.GID, Groups: id.Groups}
	mf, err := gen.Mapper.Map(ctx, caller, req)
	if err != nil {
		return engine.Facts{}, fmt.Errorf("map request: %w", err)
	}
	f.Mapping = mf
	return f, nil
}

func (s *Server) deny(cs *connState, d engine.Decision, log zerolog.Logger) {
	reasons := d.Reasons
	if len(reasons) == 0 {
		reasons = []string{"the policy gave no reason"}
	}
	ev := log.Warn()
	if d.Failure != "" {
		// Not a verdict but a failure (evaluation error, malformed decision...).
		ev = log.Error().Str("failure", d.Failure)
	}
	rules := make([]string, 0, len(d.Denials))
	for _, dn := range d.Denials {
		rules = append(rules, dn.Rule)
	}
	ev.Strs("reasons", reasons).Strs("rules", rules).Str("decision_id", d.DecisionID).Msg("request denied")
	cs.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	msg, exit := protocol.DeniedEvents(reasons)
	if cs.send(msg) != nil {
		return
	}
	exit.DecisionID = d.DecisionID
	cs.send(exit)
}

func (s *Server) build(ctx context.Context, cs *connState, r *bufio.Reader, gen *Generation, req *protocol.Request, acct account.Account, log zerolog.Logger) {
	cfg := gen.Config
	load, ok := s.reserveBuild(cs.peer.UID)
	if !ok {
		cs.refuse(protocol.ExitUnavailable, "build-service is shutting down")
		return
	}
	defer s.releaseBuild(cs.peer.UID)

	f, err := s.facts(ctx, cs, gen, req, acct, load)
	if err != nil {
		log.Error().Err(err).Msg("request refused: internal error")
		cs.refuse(protocol.ExitUnavailable, "internal error while mapping the request (see the daemon log)")
		return
	}
	d := gen.Engine.Decide(ctx, f)
	if !d.Allow {
		s.deny(cs, d, log)
		return
	}
	job, notes, err := s.job(cfg, req, f, d)
	if err != nil {
		// An invariant Go holds whatever the policy said: fail closed.
		log.Error().Err(err).Str("decision_id", d.DecisionID).Msg("allowed request refused by a daemon invariant")
		d.Allow = false
		d.Reasons = []string{err.Error()}
		s.deny(cs, d, log)
		return
	}
	for _, n := range notes {
		if cs.say(n) != nil {
			return
		}
	}

	buildCtx, cancelBuild := context.WithCancel(ctx)
	defer cancelBuild()
	signals := make(chan syscall.Signal, 4)
	var clientGone bool
	var goneMu sync.Mutex
	ctlDone := make(chan struct{})
	// The request is read; from now on only control lines, with no deadline.
	cs.conn.SetReadDeadline(time.Time{})
	go func() {
		defer close(ctlDone)
		gone := s.readControl(r, signals, log)
		if gone {
			goneMu.Lock()
			clientGone = true
			goneMu.Unlock()
			cancelBuild()
		}
	}()
	// A client that stops reading blocks the build on its pipe (that is
	// the back-pressure we want) but must not hold it past its end.
	stuck := time.AfterFunc(job.Timeout+job.KillGrace+15*time.Second, func() {
		cs.conn.SetWriteDeadline(time.Now())
	})
	stopOnCancel := context.AfterFunc(buildCtx, func() {
		cs.conn.SetWriteDeadline(time.Now().Add(job.KillGrace + 5*time.Second))
	})

	log.Info().
		Str("cwd", job.Dir).
		Str("command", job.Path).
		Strs("args", job.Args).
		Str("decision_id", d.DecisionID).
		Int64("timeout_sec", int64(job.Timeout/time.Second)).
		Int("run_uid", int(job.Cred.UID)).
		Int("run_gid", int(job.Cred.GID)).
		Msg("build started")
	res := s.exec.Run(buildCtx, job, cs.send, signals)
	stuck.Stop()
	stopOnCancel()
	// Whether the client left during the build, not after its exit event.
	goneMu.Lock()
	gone := clientGone
	goneMu.Unlock()

	// build-cli words 124 and 127 itself from these fields; the stderr
	// line is for a user reading the raw stream (and older clients).
	cs.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	switch {
	case res.TimedOut:
		cs.say(fmt.Sprintf("build timed out after %d s and was stopped", int64(job.Timeout/time.Second)))
	case res.Cancelled && !gone:
		cs.say("build cancelled: build-service is stopping")
	}
	ev := exitEvent(res.Code, res.TimedOut)
	if res.StartErr != nil {
		ev.Reasons = []string{oneLine(res.StartErr.Error())}
	}
	ev.Signal = res.Signal
	ev.DurationMS = res.Duration.Milliseconds()
	ev.DecisionID = d.DecisionID
	ev.Cancelled = res.Cancelled
	ev.StartError = res.StartErr != nil
	cs.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	sendErr := cs.send(ev)

	end := log.Info()
	if res.StartErr != nil || sendErr != nil && !gone {
		end = log.Warn()
	}
	end.Str("cwd", job.Dir).
		Strs("args", job.Args).
		Str("decision_id", d.DecisionID).
		Int("exit_code", res.Code).
		Int64("duration_ms", res.Duration.Milliseconds()).
		Bool("timed_out", res.TimedOut).
		Bool("cancelled", res.Cancelled).
		Bool("client_gone", gone).
		Str("signal", res.Signal).
		AnErr("start_error", res.StartErr).
		AnErr("send_error", sendErr).
		Msg("build finished")

	// Unblock the control reader and wait for it: no goroutine outlives
	// the connection.
	cs.conn.Close()
	<-ctlDone
}

// maxSignals is how many signals one connection may forward; build-cli
// sends at most 3 before it gives up and closes.
const maxSignals = 16

// readControl reads control lines until the client closes (or the
// connection is closed under it). It returns true when the client went
// away, which cancels the build. A malformed control line is logged and
// ignored: the client is still there and its build is not at fault.
func (s *Server) readControl(r *bufio.Reader, signals chan<- syscall.Signal, log zerolog.Logger) (clientGone bool) {
	logged, forwarded := 0, 0
	for {
		line, err := protocol.ReadLine(r, protocol.MaxControlBytes)
		if tooLong := (*protocol.LineTooLongError)(nil); errors.As(err, &tooLong) {
			if !tooLong.Consumed {
				// Skip the rest of the oversized line in bounded memory.
				for {
					_, err = r.ReadSlice('\n')
					if !errors.Is(err, bufio.ErrBufferFull) {
						break
					}
				}
				if err != nil {
					return !errors.Is(err, net.ErrClosed)
				}
			}
			if logged < 3 {
				logged++
				log.Warn().Msg("control line too long; ignored")
			}
			continue
		}
		if err != nil {
			return !errors.Is(err, net.ErrClosed)
		}
		ctl, err := protocol.DecodeControl(line)
		if err != nil {
			if logged < 3 {
				logged++
				log.Warn().Err(err).Msg("bad control line ignored")
			}
			continue
		}
		sig, ok := protocol.SignalNumber(ctl.Signal)
		if ctl.Type != protocol.ControlSignal || !ok {
			if logged < 3 {
				logged++
				log.Warn().Str("type", ctl.Type).Str("signal", ctl.Signal).Msg("unsupported control line ignored")
			}
			continue
		}
		if forwarded >= maxSignals {
			// A build that ignores its signals keeps make alive, and a
			// client streaming signal lines would otherwise write a log
			// line each (tens of thousands a second, rotating the audit
			// trail away) and a kill(2) each.
			if forwarded == maxSignals {
				forwarded++
				log.Warn().Int("max_signals", maxSignals).Msg("too many signals from this client; further signal lines ignored")
			}
			continue
		}
		forwarded++
		log.Info().Str("signal", ctl.Signal).Msg("forwarding signal to build")
		select {
		case signals <- sig:
		default:
		}
	}
}

// job turns an allowed decision into the executor's job, holding the
// invariants that do not depend on the policy. notes are told the client.
func (s *Server) job(cfg *config.Config, req *protocol.Request, f engine.Facts, d engine.Decision) (executor.Job, []string, error) {
	var notes []string
	path, ok := cfg.Build.Commands[req.Command]
	if !ok || path == "" {
		return executor.Job{}, nil, fmt.Errorf("command %q is not in the daemon's build.commands", req.Command)
	}
	if !strings.HasPrefix(path, "/") {
		return executor.Job{}, nil, fmt.Errorf("build.commands.%s is not an absolute path", req.Command)
	}
	id := d.Identity
	if id.UID != f.Peer.UID {
		return executor.Job{}, nil, fmt.Errorf("internal error: decided identity uid %d is not the caller's uid %d", id.UID, f.Peer.UID)
	}
	if id.UID == 0 {
		return executor.Job{}, nil, errors.New("builds never run as root (uid 0)")
	}
	if !id.GIDAllowed {
		return executor.Job{}, nil, fmt.Errorf("your gid %d is not one of your account's groups", f.Peer.GID)
	}
	if s.selfUID != 0 && id.UID != s.selfUID {
		return executor.Job{}, nil, fmt.Errorf("this build-service runs unprivileged as uid %d and serves only that uid", s.selfUID)
	}
	cred := executor.Credential{UID: uint32(id.UID), GID: uint32(id.GID), Groups: []uint32{}}
	for _, g := range id.Groups {
		cred.Groups = append(cred.Groups, uint32(g))
	}

	var args []string
	dir := ""
	if f.Mapping != nil {
		dir = f.Mapping.Cwd.Resolved
	}
	if mapper.IsMake(req.Command) {
		if f.Mapping == nil || f.Mapping.Make == nil || f.Mapping.Make.ParseError != "" {
			return executor.Job{}, nil, errors.New("internal error: make was allowed without a parsed command line")
		}
		// A parsed command line always renders to at least "--"; an empty
		// one means a path make needs could not be resolved. Refuse it
		// whatever the policy said: running make with no arguments is not
		// what the caller asked for.
		if len(f.Mapping.Make.Argv) == 0 {
			return executor.Job{}, nil, errors.New("make's command line names a path that could not be resolved; run `make` with paths inside your workspace")
		}
		args = slices.Clone(f.Mapping.Make.Argv)
		// make would enter --directory by name, after the check, where a
		// swapped symlink (or one created where nothing was) could take
		// it elsewhere. Start make in that directory instead (the exec
		// helper verifies it is the one the policy judged) and keep
		// "--directory=." so make behaves as with -C (it prints "Entering
		// directory"). A -C that does not exist then fails to start (127,
		// naming the directory) instead of make failing on it (2).
		if d, ok := strings.CutPrefix(args[0], "--directory="); ok {
			dir = d
			args[0] = "--directory=."
		}
	} else {
		args = slices.Clone(req.Args)
	}
	if args == nil {
		args = []string{}
	}
	if dir == "" || !strings.HasPrefix(dir, "/") {
		return executor.Job{}, nil, errors.New("internal error: no resolved working directory")
	}

	maxSec := cfg.Build.Timeouts.MaxSec
	tsec := d.TimeoutSec
	if tsec <= 0 {
		return executor.Job{}, nil, errors.New("internal error: the decision carries no timeout")
	}
	if maxSec > 0 && tsec > maxSec {
		tsec = maxSec
		d.TimeoutCapped = true
	}
	if d.TimeoutCapped {
		notes = append(notes, fmt.Sprintf("timeout capped at %d s (build.timeouts.max_sec)", tsec))
	}
	// Say which of the request's variables the build does not get (names
	// only): a user who set one expects it to matter.
	var dropped []string
	for k := range req.Env {
		if _, ok := d.Env[k]; !ok {
			dropped = append(dropped, k)
		}
	}
	if len(dropped) > 0 {
		sort.Strings(dropped)
		notes = append(notes, fmt.Sprintf("not passed to the build (not in build.environment.allow): %s", strings.Join(dropped, ", ")))
	}
	grace := cfg.Build.Timeouts.KillGraceSec
	if grace <= 0 {
		grace = 5
	}

	names := make([]string, 0, len(d.Env))
	for k := range d.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	env := make([]string, 0, len(names))
	for _, k := range names {
		env = append(env, k+"="+d.Env[k])
	}

	return executor.Job{
		ID:        d.DecisionID,
		Path:      path,
		Name:      req.Command,
		Args:      args,
		Dir:       dir,
		Env:       env,
		Cred:      cred,
		Timeout:   time.Duration(tsec) * time.Second,
		KillGrace: time.Duration(grace) * time.Second,
		Limits: executor.Limits{
			PidsMax:   d.Limits.PidsMax,
			MemoryMax: d.Limits.MemoryMax,
			CPUMax:    d.Limits.CPUMax,
		},
		NoNewPrivs: d.NoNewPrivs,
	}, notes, nil
}

// DoctorReport is what a "doctor" request returns: how the daemon sees
// the caller, through the same policy as a build.
type DoctorReport struct {
	Peer           engine.Peer     `json:"peer"`
	Account        engine.Account  `json:"account"`
	Identity       engine.Identity `json:"identity"`
	Mapping        *mapper.Facts   `json:"mapping"`
	Load           engine.Load     `json:"load"`
	PolicyRevision string          `json:"policy_revision"`
	DecisionID     string          `json:"decision_id"`
	Allowed        bool            `json:"allowed"`
	Reasons        []string        `json:"reasons,omitempty"`
	DevMode        bool            `json:"dev_mode"`
}

func (s *Server) doctor(ctx context.Context, cs *connState, gen *Generation, req *protocol.Request, acct account.Account, log zerolog.Logger) {
	f, err := s.facts(ctx, cs, gen, req, acct, s.currentLoad(cs.peer.UID))
	if err != nil {
		log.Error().Err(err).Msg("doctor refused: internal error")
		cs.refuse(protocol.ExitUnavailable, "internal error while mapping the request (see the daemon log)")
		return
	}
	d := gen.Engine.Decide(ctx, f)
	if !d.Allow {
		s.deny(cs, d, log)
		return
	}
	rep := DoctorReport{
		Peer: f.Peer, Account: f.Account, Identity: d.Identity, Mapping: f.Mapping, Load: f.Load,
		PolicyRevision: gen.Engine.Revision(), DecisionID: d.DecisionID, Allowed: d.Allow, Reasons: d.Reasons,
		DevMode: s.selfUID != 0,
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		cs.refuse(protocol.ExitUnavailable, "internal error: encode doctor report")
		return
	}
	log.Info().Str("decision_id", d.DecisionID).Msg("doctor report sent")
	cs.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if cs.send(stdoutEvent(string(b)+"\n")) != nil {
		return
	}
	ev := exitEvent(0, false)
	ev.DecisionID = d.DecisionID
	cs.send(ev)
}
