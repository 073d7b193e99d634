package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ControlSignal is the only control line type.
const ControlSignal = "signal"

// MaxEventBytes bounds one event line as build-cli reads it. An output event
// of a 10 MiB line that is all quotes or backslashes doubles in JSON; the
// executor keeps events far smaller by emitting per read, so this only stops
// a broken or hostile daemon from growing the client without bound.
const MaxEventBytes = 64 << 20

// OutputEvent returns a stdout or stderr event carrying data (which should
// be valid UTF-8: feed raw output through a UTF8Stream).
func OutputEvent(stream, data string) Event {
	return Event{Type: stream, Data: data}
}

// ExitEvent returns an exit event with its two mandatory fields set; the
// caller sets the optional extras (Signal, Denied, Reasons, ...).
func ExitEvent(code int, timedOut bool) Event {
	return Event{Type: EventExit, Code: &code, TimedOut: &timedOut}
}

// DeniedEvents returns what the daemon sends for a refusal: a stderr event
// with the one-line message (marked Denied, so build-cli prints its own
// line from the reasons instead and the user reads it once, while an older
// client that ignores the mark still shows it) and the exit event with code
// 126, Denied and Reasons.
func DeniedEvents(reasons []string) (stderr, exit Event) {
	stderr = OutputEvent(EventStderr, "build-service: denied: "+JoinReasons(reasons)+"\n")
	stderr.Denied = true
	exit = ExitEvent(ExitDenied, false)
	exit.Denied = true
	exit.Reasons = reasons
	return stderr, exit
}

// JoinReasons renders reasons as one line: joined by "; ", control
// characters replaced, so a reason cannot forge a second line.
func JoinReasons(reasons []string) string {
	var b bytes.Buffer
	for i, r := range reasons {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(oneLine(r))
	}
	if b.Len() == 0 {
		return "no reason given"
	}
	return b.String()
}

// marshalLine renders v as one JSON line. HTML escaping is off: the peers are
// programs, and it would only inflate make's output ("<", ">", "&").
func marshalLine(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // Encode appends the '\n'
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteEvent writes ev as one line with a single Write call.
func WriteEvent(w io.Writer, ev Event) error {
	line, err := marshalLine(ev)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("write %s event: %w", ev.Type, err)
	}
	return nil
}

// Encoder writes events to one connection. It is safe for concurrent use:
// the stdout and stderr pumps may share it, and lines never interleave.
type Encoder struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes ev as one line.
func (e *Encoder) Encode(ev Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return WriteEvent(e.w, ev)
}

// Validate reports what DecodeRequest would refuse about a request built in
// Go (or what could not be sent faithfully), so a client finds out before it
// sends.
func (r *Request) Validate() error {
	_, err := EncodeRequest(r)
	return err
}

func (r *Request) normalized() *Request {
	n := *r
	if n.Args == nil {
		n.Args = []string{}
	}
	return &n
}

// EncodeRequest renders r as one request line (ending in '\n') after checking
// that DecodeRequest accepts exactly that line. Strings that are not valid
// UTF-8 are refused here rather than silently turned into U+FFFD.
func EncodeRequest(r *Request) ([]byte, error) {
	for i, a := range r.Args {
		if err := checkString(a); err != nil {
			return nil, &DecodeError{What: "request", Msg: fmt.Sprintf("args[%d] %v", i, err)}
		}
	}
	for _, f := range []struct{ name, v string }{{"command", r.Command}, {"cwd", r.Cwd}, {"request_id", r.RequestID}} {
		if err := checkString(f.v); err != nil {
			return nil, &DecodeError{What: "request", Msg: fmt.Sprintf("%s %v", f.name, err)}
		}
	}
	for k, v := range r.Env {
		if err := checkString(v); err != nil {
			return nil, &DecodeError{What: "request", Msg: fmt.Sprintf("env[%q] %v", k, err)}
		}
	}
	line, err := marshalLine(r.normalized())
	if err != nil {
		return nil, fmt.Errorf("request: encode: %w", err)
	}
	if _, err := DecodeRequest(line); err != nil {
		return nil, err
	}
	return line, nil
}

// EncodeControl renders a signal control line for one of INT, TERM, HUP,
// QUIT.
func EncodeControl(signal string) ([]byte, error) {
	if _, ok := SignalNumber(signal); !ok {
		return nil, &DecodeError{What: "control", Msg: fmt.Sprintf("signal %s is not one of INT, TERM, HUP, QUIT", quote(signal))}
	}
	return marshalLine(Control{Type: ControlSignal, Signal: signal})
}

// DecodeEvent decodes one event line from the daemon. It is lenient where
// compatibility needs it (unknown fields are ignored, so a newer daemon can
// add some) and strict where the client's exit code depends on it: a type
// is required, and an exit event must carry its code.
func DecodeEvent(line []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return Event{}, fmt.Errorf("event is not a JSON object: %s", oneLine(err.Error()))
	}
	switch {
	case ev.Type == "":
		return Event{}, errors.New("event has no type")
	case ev.Type == EventExit && ev.Code == nil:
		return Event{}, errors.New("exit event has no code")
	case ev.Type == EventExit && (*ev.Code < 0 || *ev.Code > 255):
		return Event{}, fmt.Errorf("exit event code %d is outside 0-255", *ev.Code)
	}
	return ev, nil
}

// ReadLine reads one '\n'-terminated line of at most limit bytes (the '\n'
// included) from r, without buffering more than that. It returns io.EOF when
// r ends before any byte, io.ErrUnexpectedEOF when it ends inside a line,
// and a *LineTooLongError (wrapping ErrTooLong) when the line is longer
// than limit; what of that line is unread stays unread. The returned slice
// is a fresh copy.
func ReadLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > limit {
			return nil, &LineTooLongError{Limit: limit, Consumed: err == nil}
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// LineTooLongError is ReadLine's error for a line over its limit. Consumed
// says whether the line's '\n' was already read, so a reader that goes on
// after the bad line knows whether to skip the rest of it first.
type LineTooLongError struct {
	Limit    int
	Consumed bool
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("read line: longer than %d bytes", e.Limit)
}

func (e *LineTooLongError) Unwrap() error { return ErrTooLong }
