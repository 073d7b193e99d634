package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error DecodeRequest and DecodeControl
// return, so a caller can tell "the peer sent garbage" from its own faults.
var ErrMalformed = errors.New("malformed line")

// ErrTooLong is wrapped (beside ErrMalformed) when a line is over its limit.
var ErrTooLong = errors.New("line over the size limit")

// DecodeError is a one-line description of what was wrong with a request or
// control line. Its text names the field, never echoes an env value, and
// quotes anything from the peer, so it is safe to log and to send back.
type DecodeError struct {
	What    string // "request" or "control"
	Msg     string
	tooLong bool
}

func (e *DecodeError) Error() string { return e.What + ": " + e.Msg }

func (e *DecodeError) Unwrap() []error {
	if e.tooLong {
		return []error{ErrMalformed, ErrTooLong}
	}
	return []error{ErrMalformed}
}

// MaxRequestIDBytes bounds request_id, which ends up in every log line.
const MaxRequestIDBytes = 128

// Decoding decisions beyond DESIGN.md (the README's protocol section repeats
// them):
//
//   - The line is at most MaxRequestBytes including its optional final '\n';
//     no other '\n' may occur (one object on one line). That cap is the only
//     bound on the number of args and env entries (about 21 000 empty args
//     fit), so memory stays proportional to 64 KiB.
//   - Every byte of the line must be valid UTF-8; \u escapes must not be
//     unpaired surrogates (encoding/json would silently turn either into
//     U+FFFD, so the policy and make would see different strings); no string
//     may contain NUL.
//   - Keys are matched exactly. A key that differs only in case from a known
//     one is refused with a message saying so; a duplicate key is refused.
//   - schema_version "1", command and cwd are required and non-empty. args
//     may be absent (= []). request_id may be absent or "" (the daemon makes
//     one up), else 1-128 printable ASCII characters without spaces. type is
//     absent (= "build"), "build" or "doctor". env is an object of strings
//     whose names match [A-Za-z_][A-Za-z0-9_]*; an empty env decodes as nil.
//   - timeout_sec, when present, must be a JSON integer that fits in an int;
//     zero, negative and huge values are carried for the policy to judge.
//   - null is never accepted in place of a value.
var requestFields = []string{"schema_version", "type", "request_id", "command", "args", "cwd", "timeout_sec", "env"}

var controlFields = []string{"type", "signal"}

// DecodeRequest strictly decodes one request line (with or without its
// final '\n'). Every error wraps ErrMalformed and reads as one line starting
// with "request: ".
func DecodeRequest(line []byte) (*Request, error) {
	w, err := newWalker("request", line, MaxRequestBytes)
	if err != nil {
		return nil, err
	}
	r, err := w.request()
	if err != nil {
		// A request from a newer client is better told about the version than
		// about the first field this version does not know.
		if v, ok := probeSchemaVersion(w.body); ok && v != SchemaVersion {
			return nil, w.fail("schema_version %s is not supported (this daemon speaks %q)", quote(v), SchemaVersion)
		}
		return nil, err
	}
	return r, nil
}

// DecodeControl strictly decodes one control line (with or without its
// final '\n'): {"type":"signal","signal":"INT"|"TERM"|"HUP"|"QUIT"}.
func DecodeControl(line []byte) (*Control, error) {
	w, err := newWalker("control", line, MaxControlBytes)
	if err != nil {
		return nil, err
	}
	return w.control()
}

type walker struct {
	what string
	body []byte
	dec  *json.Decoder
}

func newWalker(what string, line []byte, limit int) (*walker, error) {
	w := &walker{what: what}
	if len(line) > limit {
		return nil, &DecodeError{What: what, Msg: fmt.Sprintf("line of %d bytes is over the %d-byte limit", len(line), limit), tooLong: true}
	}
	body := bytes.TrimSuffix(line, []byte("\n"))
	w.body = body
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return nil, w.fail("empty line")
	case bytes.IndexByte(body, '\n') >= 0:
		return nil, w.fail("more than one line (the object must be on one line)")
	case !utf8.Valid(body):
		return nil, w.fail("not valid UTF-8")
	case bytes.IndexByte(body, 0) >= 0:
		return nil, w.fail("contains a NUL byte")
	}
	if err := checkEscapes(body); err != "" {
		return nil, w.fail("%s", err)
	}
	w.dec = json.NewDecoder(bytes.NewReader(body))
	w.dec.UseNumber()
	return w, nil
}

func (w *walker) fail(format string, args ...any) error {
	return &DecodeError{What: w.what, Msg: fmt.Sprintf(format, args...)}
}

// token reads the next token and turns any syntax problem into a one-line
// error.
func (w *walker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err == nil {
		return tok, nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, w.fail("not JSON: unexpected end of input")
	}
	return nil, w.fail("not JSON: %s", oneLine(err.Error()))
}

// object walks the top-level object, calling field for each key in order
// after checking it is known, spelt exactly and not repeated. After the
// object only whitespace may follow.
func (w *walker) object(known []string, field func(key string) error) error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return w.fail("not a JSON object (got %s)", kind(tok))
	}
	seen := make(map[string]bool, len(known))
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok { // encoding/json already refuses this; belt and braces
			return w.fail("object key is not a string")
		}
		if !contains(known, key) {
			for _, k := range known {
				if strings.EqualFold(k, key) {
					return w.fail("field %s differs only in case from %q (keys are case-sensitive)", quote(key), k)
				}
			}
			return w.fail("unknown field %s", quote(key))
		}
		if seen[key] {
			return w.fail("duplicate field %q", key)
		}
		seen[key] = true
		if err := field(key); err != nil {
			return err
		}
	}
	if _, err := w.token(); err != nil { // the closing '}'
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return w.fail("trailing data after the object")
	}
	return nil
}

func (w *walker) request() (*Request, error) {
	r := &Request{}
	var haveVersion, haveCommand, haveCwd bool
	err := w.object(requestFields, func(key string) error {
		var err error
		switch key {
		case "schema_version":
			haveVersion = true
			if r.SchemaVersion, err = w.str(key); err == nil && r.SchemaVersion != SchemaVersion {
				err = w.fail("schema_version %s is not supported (this daemon speaks %q)", quote(r.SchemaVersion), SchemaVersion)
			}
		case "type":
			if r.Type, err = w.str(key); err == nil {
				err = w.checkType(r.Type)
			}
		case "request_id":
			if r.RequestID, err = w.str(key); err == nil {
				err = w.wrapField(key, ValidRequestID(r.RequestID))
			}
		case "command":
			haveCommand = true
			r.Command, err = w.nonEmpty(key)
		case "cwd":
			haveCwd = true
			r.Cwd, err = w.nonEmpty(key)
		case "args":
			r.Args, err = w.strings(key)
		case "timeout_sec":
			var n int
			if n, err = w.integer(key); err == nil {
				r.TimeoutSec = &n
			}
		case "env":
			r.Env, err = w.env()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !haveVersion:
		return nil, w.fail("missing field \"schema_version\" (want %q)", SchemaVersion)
	case !haveCommand:
		return nil, w.fail("missing field \"command\"")
	case !haveCwd:
		return nil, w.fail("missing field \"cwd\"")
	}
	if r.Type == "" {
		r.Type = TypeBuild
	}
	if r.Args == nil {
		r.Args = []string{}
	}
	if len(r.Env) == 0 {
		r.Env = nil
	}
	return r, nil
}

func (w *walker) control() (*Control, error) {
	c := &Control{}
	var haveType, haveSignal bool
	err := w.object(controlFields, func(key string) error {
		var err error
		switch key {
		case "type":
			haveType = true
			if c.Type, err = w.str(key); err == nil && c.Type != ControlSignal {
				err = w.fail("type %s is not %q", quote(c.Type), ControlSignal)
			}
		case "signal":
			haveSignal = true
			if c.Signal, err = w.str(key); err == nil {
				if _, ok := SignalNumber(c.Signal); !ok {
					err = w.fail("signal %s is not one of INT, TERM, HUP, QUIT", quote(c.Signal))
				}
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !haveType:
		return nil, w.fail("missing field \"type\"")
	case !haveSignal:
		return nil, w.fail("missing field \"signal\"")
	}
	return c, nil
}

func (w *walker) checkType(t string) error {
	if t != TypeBuild && t != TypeDoctor {
		return w.fail("type %s is not %q or %q", quote(t), TypeBuild, TypeDoctor)
	}
	return nil
}

func (w *walker) wrapField(key string, err error) error {
	if err == nil {
		return nil
	}
	return w.fail("field %q %v", key, err)
}

// str reads a string value. Strings arrive here valid UTF-8 without unpaired
// surrogates (checked on the raw line), so only NUL is left to refuse.
func (w *walker) str(name string) (string, error) {
	return w.strOf(func() string { return name })
}

// strOf is str with the field's name made only when it is needed for an
// error: a 64 KiB request may hold 20 000 args.
func (w *walker) strOf(name func() string) (string, error) {
	tok, err := w.token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", w.fail("%s must be a string, not %s", name(), kind(tok))
	}
	if err := checkString(s); err != nil {
		return "", w.fail("%s %v", name(), err)
	}
	return s, nil
}

func (w *walker) nonEmpty(name string) (string, error) {
	s, err := w.str(name)
	if err == nil && s == "" {
		err = w.fail("%s is empty", name)
	}
	return s, err
}

func (w *walker) strings(name string) ([]string, error) {
	tok, err := w.token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, w.fail("%s must be an array of strings, not %s", name, kind(tok))
	}
	out := []string{}
	for w.dec.More() {
		i := len(out)
		s, err := w.strOf(func() string { return fmt.Sprintf("%s[%d]", name, i) })
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	_, err = w.token() // ']'
	return out, err
}

func (w *walker) integer(name string) (int, error) {
	tok, err := w.token()
	if err != nil {
		return 0, err
	}
	num, ok := tok.(json.Number)
	if !ok {
		return 0, w.fail("%s must be an integer, not %s", name, kind(tok))
	}
	n, err := strconv.ParseInt(string(num), 10, strconv.IntSize)
	if err != nil {
		return 0, w.fail("%s must be an integer that fits in %d bits, not %s", name, strconv.IntSize, truncate(string(num)))
	}
	return int(n), nil
}

func (w *walker) env() (map[string]string, error) {
	tok, err := w.token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, w.fail("env must be an object of strings, not %s", kind(tok))
	}
	env := map[string]string{}
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		if err := ValidEnvName(name); err != nil {
			return nil, w.fail("env name %v", err)
		}
		if _, dup := env[name]; dup {
			return nil, w.fail("duplicate env name %q", name)
		}
		// The value is never echoed: it may be a secret.
		v, err := w.strOf(func() string { return fmt.Sprintf("env[%q]", name) })
		if err != nil {
			return nil, err
		}
		env[name] = v
	}
	_, err = w.token() // '}'
	return env, err
}

// probeSchemaVersion looks leniently for a string schema_version, only to
// choose the better of two error messages; nothing is accepted from it.
func probeSchemaVersion(body []byte) (string, bool) {
	var probe struct {
		V *string `json:"schema_version"`
	}
	if json.Unmarshal(body, &probe) != nil || probe.V == nil {
		return "", false
	}
	return *probe.V, true
}

// checkEscapes refuses \u escapes that encoding/json would turn into U+FFFD:
// a high surrogate not followed by a low one, or a lone low surrogate.
// Outside strings a backslash is a syntax error anyway, so a plain scan is
// enough. It returns "" when the line is fine.
func checkEscapes(b []byte) string {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 >= len(b) || b[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			return "" // a bad escape; encoding/json reports it
		}
		i += 5
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return "string contains an unpaired UTF-16 surrogate escape"
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return "string contains an unpaired UTF-16 surrogate escape"
			}
			lo, ok := hex4(b, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return "string contains an unpaired UTF-16 surrogate escape"
			}
			i += 6
		}
	}
	return ""
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(n), err == nil
}

func checkString(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("contains a NUL byte")
	}
	return nil
}

// ValidEnvName reports whether name is a portable environment variable name
// ([A-Za-z_][A-Za-z0-9_]*); the error reads after the quoted name.
func ValidEnvName(name string) error {
	ok := name != ""
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9'
	}
	if !ok {
		return fmt.Errorf("%s is not a valid variable name", quote(name))
	}
	return nil
}

// ValidRequestID reports whether id may be sent as request_id: "" (the
// daemon picks one) or 1-128 printable ASCII characters without spaces, so
// it can be logged and matched as is.
func ValidRequestID(id string) error {
	if len(id) > MaxRequestIDBytes {
		return fmt.Errorf("is longer than %d bytes", MaxRequestIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return errors.New("may hold only printable ASCII without spaces")
		}
	}
	return nil
}

func kind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return "'" + v.String() + "'"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// quote renders peer-supplied text for a one-line message: quoted, escaped,
// and cut to a length that cannot flood a log.
func quote(s string) string { return strconv.Quote(truncate(s)) }

func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
