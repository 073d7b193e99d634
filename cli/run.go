package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/build-service/build-service/protocol"
)

// Bounds on waiting for the daemon outside the build itself, which may run
// for hours. The daemon reads a request within seconds and control lines
// at once; a daemon that does not is reported, not waited on forever.
const (
	dialTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	// GiveUpSignals is how many forwarded signals without an exit event make
	// build-cli stop waiting: it closes the connection, which the daemon
	// treats as a cancel (TERM, then KILL after the grace).
	GiveUpSignals = 3
)

// testHookBeforeSend lets a test order a daemon's early close before the
// request is written.
var testHookBeforeSend func()

// outcome is how a connection ended: the exit code and, for the codes
// build-cli explains itself, the one line to print.
type outcome struct {
	code     int
	msg      string
	answered bool // the daemon sent an exit event
}

// Run sends req to the daemon at socket, relays the events to sys.Stdout and
// sys.Stderr as they arrive, forwards sys.Signals, and returns build-cli's
// exit code. It prints at most one line of its own, and only for 125, 126
// and 127 (and when it gives up after GiveUpSignals signals).
func Run(ctx context.Context, socket string, req *protocol.Request, sys IO) int {
	o := run(ctx, socket, req, sys)
	if o.msg != "" {
		fmt.Fprintln(sys.Stderr, o.msg)
	}
	return o.code
}

func unreachable(socket string, format string, args ...any) outcome {
	return outcome{code: protocol.ExitUnavailable, msg: fmt.Sprintf("build-cli: build-service unreachable at %s: %s", socket, fmt.Sprintf(format, args...))}
}

func protocolError(format string, args ...any) outcome {
	return outcome{code: protocol.ExitUnavailable, msg: "build-cli: protocol error: " + fmt.Sprintf(format, args...)}
}

func run(ctx context.Context, socket string, req *protocol.Request, sys IO) outcome {
	line, err := protocol.EncodeRequest(req)
	if err != nil {
		// Only what the user typed or set can get here (a non-UTF-8 argument,
		// too many arguments): say so rather than send something else.
		return outcome{code: protocol.ExitUnavailable, msg: "build-cli: cannot send this request: " + strings.TrimPrefix(err.Error(), "request: ")}
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return unreachable(socket, "%s", reason(err))
	}
	defer conn.Close()
	// A signal that arrived while connecting stops us before anything runs.
	select {
	case sig := <-sys.Signals:
		return outcome{code: exitCodeFor(sig)}
	default:
	}
	if testHookBeforeSend != nil {
		testHookBeforeSend()
	}
	if err := writeLine(conn, line); err != nil {
		// A daemon that refuses a connection (too many open) may answer and
		// close before reading: its explanation is still readable, and
		// worth more than "broken pipe".
		conn.SetReadDeadline(time.Now().Add(writeTimeout))
		if o := relay(conn, socket, req.Command, sys); o.answered {
			return o
		}
		return unreachable(socket, "send request: %s", reason(err))
	}

	done := make(chan outcome, 1)
	go func() { done <- relay(conn, socket, req.Command, sys) }()

	signals := 0
	for {
		select {
		case o := <-done:
			return o
		case <-ctx.Done():
			conn.Close()
			<-done
			return outcome{code: protocol.ExitUnavailable, msg: "build-cli: " + ctx.Err().Error()}
		case sig := <-sys.Signals:
			signals++
			name := protocol.SignalName(sysSignal(sig))
			if name == "" {
				continue
			}
			if signals >= GiveUpSignals {
				conn.Close() // the daemon cancels the build on EOF
				// The reader ends at once unless it is stuck writing to a
				// paused terminal; the user asked to stop, so do not wait.
				select {
				case <-done:
				case <-time.After(2 * time.Second):
				}
				return outcome{code: exitCodeFor(sig), msg: fmt.Sprintf("build-cli: no exit from build-service after %d signals; disconnected, the build is being cancelled", signals)}
			}
			ctl, _ := protocol.EncodeControl(name)
			// Never half-close: a failed control write just means the
			// connection is going away, which the reader reports.
			_ = writeLine(conn, ctl)
		}
	}
}

func writeLine(conn net.Conn, line []byte) error {
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	_, err := conn.Write(line)
	return err
}

// relay reads events until the exit event and turns it into an outcome.
// Output data is written as soon as its event arrives, unbuffered, so a
// build's progress shows while it runs.
func relay(conn net.Conn, socket, command string, sys IO) outcome {
	r := bufio.NewReaderSize(conn, 64<<10)
	// A stderr event the daemon marks as its own refusal or start error is
	// held: build-cli prints one line of its own for those instead.
	var held []string
	for n := 1; ; n++ {
		line, err := protocol.ReadLine(r, protocol.MaxEventBytes)
		switch {
		case errors.Is(err, io.EOF):
			return unreachable(socket, "connection closed before the exit event")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return unreachable(socket, "connection closed in the middle of event %d", n)
		case errors.Is(err, protocol.ErrTooLong):
			return protocolError("event %d is longer than %d bytes", n, protocol.MaxEventBytes)
		case err != nil:
			return unreachable(socket, "read: %s", reason(err))
		}
		ev, err := protocol.DecodeEvent(line)
		if err != nil {
			return protocolError("event %d: %v", n, err)
		}
		switch ev.Type {
		case protocol.EventStdout:
			if _, err := io.WriteString(sys.Stdout, ev.Data); err != nil {
				return outcome{code: protocol.ExitUnavailable, msg: "build-cli: write standard output: " + reason(err)}
			}
		case protocol.EventStderr:
			if ev.Denied || ev.StartError {
				held = append(held, ev.Data)
				continue
			}
			if _, err := io.WriteString(sys.Stderr, ev.Data); err != nil {
				return outcome{code: protocol.ExitUnavailable, msg: "build-cli: write standard error: " + reason(err)}
			}
		case protocol.EventExit:
			o := exitOutcome(ev, command, held, sys)
			o.answered = true
			return o
		default:
			// A type this client does not know: DESIGN.md promises new
			// information only as optional fields, so skip it.
		}
	}
}

// exitOutcome maps the exit event to build-cli's exit code. The flags say
// what happened, so they win over the code: a denial is 126 even if a
// daemon got the number wrong, while a build that itself exits 126 (no
// flag) passes through.
func exitOutcome(ev protocol.Event, command string, held []string, sys IO) outcome {
	why := func() string {
		if len(ev.Reasons) > 0 {
			return protocol.JoinReasons(ev.Reasons)
		}
		for _, h := range held {
			if s := strings.TrimSpace(h); s != "" {
				return protocol.JoinReasons([]string{s})
			}
		}
		return "no reason given"
	}
	switch {
	case ev.Denied:
		return outcome{code: protocol.ExitDenied, msg: "build-cli: denied: " + why()}
	case ev.StartError:
		return outcome{code: protocol.ExitCannotStart, msg: fmt.Sprintf("build-cli: could not start %s: %s", oneLine(command), why())}
	}
	// The daemon marked a message that turned out not to be a refusal:
	// show it rather than lose it.
	for _, h := range held {
		io.WriteString(sys.Stderr, h)
	}
	if ev.TimedOut != nil && *ev.TimedOut {
		return outcome{code: protocol.ExitTimeout}
	}
	return outcome{code: *ev.Code}
}

// reason is the useful end of a network error: "connect: no such file or
// directory" rather than the whole "dial unix /path: ..." chain.
func reason(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		if op.Timeout() {
			return op.Op + ": timed out"
		}
		return op.Op + ": " + op.Err.Error()
	}
	return err.Error()
}

func oneLine(s string) string {
	return protocol.JoinReasons([]string{s})
}

func sysSignal(sig os.Signal) syscall.Signal {
	s, _ := sig.(syscall.Signal)
	return s
}

func exitCodeFor(sig os.Signal) int {
	return protocol.ExitCodeForSignal(int(sysSignal(sig)))
}
