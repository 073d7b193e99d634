package protocol

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestDecodeRequestAcceptsWellFormedRequests(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Request
	}{
		{
			name: "the example from DESIGN.md decodes field by field",
			line: `{"schema_version":"1","request_id":"r-1","command":"make","args":["-j4","all"],"cwd":"/home/alice/project","timeout_sec":600,"env":{"CFLAGS":"-O2"}}` + "\n",
			want: Request{SchemaVersion: "1", Type: TypeBuild, RequestID: "r-1", Command: "make", Args: []string{"-j4", "all"},
				Cwd: "/home/alice/project", TimeoutSec: ptr(600), Env: map[string]string{"CFLAGS": "-O2"}},
		},
		{
			name: "a line without its newline is the same request",
			line: `{"schema_version":"1","command":"make","cwd":"/w"}`,
			want: Request{SchemaVersion: "1", Type: TypeBuild, Command: "make", Args: []string{}, Cwd: "/w"},
		},
		{
			name: "absent args, env and timeout mean empty, none and the default",
			line: `{"schema_version":"1","command":"make","cwd":"/w","env":{}}`,
			want: Request{SchemaVersion: "1", Type: TypeBuild, Command: "make", Args: []string{}, Cwd: "/w"},
		},
		{
			name: "a doctor request keeps its type",
			line: `{"type":"doctor","schema_version":"1","command":"make","cwd":"/w"}`,
			want: Request{SchemaVersion: "1", Type: TypeDoctor, Command: "make", Args: []string{}, Cwd: "/w"},
		},
		{
			name: "zero and negative timeouts are carried for the policy to refuse",
			line: `{"schema_version":"1","command":"make","cwd":"/w","timeout_sec":-5}`,
			want: Request{SchemaVersion: "1", Type: TypeBuild, Command: "make", Args: []string{}, Cwd: "/w", TimeoutSec: ptr(-5)},
		},
		{
			name: "arguments keep spaces, quotes, newlines, empty strings and non-ASCII text",
			line: `{"schema_version":"1","command":"make","cwd":"/w","args":["", "a b", "\"q\"", "x\ny", "caf\u00e9", "日本", "\ud83d\ude00", "$(shell id)"]}`,
			want: Request{SchemaVersion: "1", Type: TypeBuild, Command: "make", Cwd: "/w",
				Args: []string{"", "a b", `"q"`, "x\ny", "café", "日本", "😀", "$(shell id)"}},
		},
		{
			name: "env names differing only in case are different variables",
			line: `{"schema_version":"1","command":"make","cwd":"/w","env":{"cc":"a","CC":"b","_x1":""}}`,
			want: Request{SchemaVersion: "1", Type: TypeBuild, Command: "make", Args: []string{}, Cwd: "/w",
				Env: map[string]string{"cc": "a", "CC": "b", "_x1": ""}},
		},
		{
			name: "whitespace around the object is allowed",
			line: " \t{ \"schema_version\" : \"1\" , \"command\":\"make\",\"cwd\":\"/w\" }  \r\n",
			want: Request{SchemaVersion: "1", Type: TypeBuild, Command: "make", Args: []string{}, Cwd: "/w"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tt.line))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", *got, tt.want)
			}
		})
	}
}

// Each line is something a hostile or broken client may send; each must be
// refused with exactly this one-line message.
func TestDecodeRequestRefusesAttacks(t *testing.T) {
	const ok = `"schema_version":"1","command":"make","cwd":"/w"`
	tests := []struct {
		name string
		line string
		want string
	}{
		{"an empty line", "\n", `request: empty line`},
		{"only whitespace", "   \t\n", `request: empty line`},
		{"not JSON at all", "make all\n", `request: not JSON: invalid character 'm' looking for beginning of value`},
		{"JSON that is an array", `["make"]`, `request: not a JSON object (got an array)`},
		{"JSON that is a string", `"make"`, `request: not a JSON object (got a string)`},
		{"JSON that is null", `null`, `request: not a JSON object (got null)`},
		{"a truncated object", `{"schema_version":"1",`, `request: not JSON: unexpected end of input`},
		{"trailing data after the object", `{` + ok + `}{}`, `request: trailing data after the object`},
		{"trailing garbage after the object", `{` + ok + `} x`, `request: trailing data after the object`},
		{"two lines in one", `{` + ok + "}\n{}\n", `request: more than one line (the object must be on one line)`},
		{"an unknown field", `{` + ok + `,"cwdd":"/etc"}`, `request: unknown field "cwdd"`},
		{"a field differing only in case", `{` + ok + `,"Args":["-C","/etc"]}`, `request: field "Args" differs only in case from "args" (keys are case-sensitive)`},
		{"an upper-case known field", `{"schema_version":"1","COMMAND":"make","cwd":"/w"}`, `request: field "COMMAND" differs only in case from "command" (keys are case-sensitive)`},
		{"a long-s spelling that encoding/json would fold onto schema_version", `{"\u017fchema_version":"1","command":"make","cwd":"/w"}`, `request: field "ſchema_version" differs only in case from "schema_version" (keys are case-sensitive)`},
		{"a duplicate cwd (policy and executor could read different values)", `{` + ok + `,"cwd":"/etc"}`, `request: duplicate field "cwd"`},
		{"a duplicate env name", `{` + ok + `,"env":{"CC":"gcc","CC":"evil"}}`, `request: duplicate env name "CC"`},
		{"a missing schema_version", `{"command":"make","cwd":"/w"}`, `request: missing field "schema_version" (want "1")`},
		{"a wrong schema_version", `{"schema_version":"2","command":"make","cwd":"/w"}`, `request: schema_version "2" is not supported (this daemon speaks "1")`},
		{"a newer schema_version with fields this daemon does not know", `{"future":true,"schema_version":"2","command":"make","cwd":"/w"}`, `request: schema_version "2" is not supported (this daemon speaks "1")`},
		{"a numeric schema_version", `{"schema_version":1,"command":"make","cwd":"/w"}`, `request: schema_version must be a string, not a number`},
		{"a missing command", `{"schema_version":"1","cwd":"/w"}`, `request: missing field "command"`},
		{"an empty command", `{"schema_version":"1","command":"","cwd":"/w"}`, `request: command is empty`},
		{"a missing cwd", `{"schema_version":"1","command":"make"}`, `request: missing field "cwd"`},
		{"an empty cwd", `{"schema_version":"1","command":"make","cwd":""}`, `request: cwd is empty`},
		{"a null command", `{"schema_version":"1","command":null,"cwd":"/w"}`, `request: command must be a string, not null`},
		{"args as a string", `{` + ok + `,"args":"-C /etc"}`, `request: args must be an array of strings, not a string`},
		{"args as null", `{` + ok + `,"args":null}`, `request: args must be an array of strings, not null`},
		{"a number among the args", `{` + ok + `,"args":["all",1]}`, `request: args[1] must be a string, not a number`},
		{"a nested array among the args", `{` + ok + `,"args":[["-C"]]}`, `request: args[0] must be a string, not an array`},
		{"a NUL escape in an argument", `{` + ok + `,"args":["a","b\u0000c"]}`, `request: args[1] contains a NUL byte`},
		{"a NUL escape in the cwd", `{"schema_version":"1","command":"make","cwd":"/w\u0000/../etc"}`, `request: cwd contains a NUL byte`},
		{"a NUL escape in the command", `{"schema_version":"1","command":"make\u0000","cwd":"/w"}`, `request: command contains a NUL byte`},
		{"a NUL escape in an env value", `{` + ok + `,"env":{"CC":"g\u0000"}}`, `request: env["CC"] contains a NUL byte`},
		{"a NUL escape in the request_id", `{` + ok + `,"request_id":"a\u0000"}`, `request: request_id contains a NUL byte`},
		{"a raw NUL byte", "{" + ok + ",\"args\":[\"a\x00\"]}", `request: contains a NUL byte`},
		{"invalid UTF-8 in an argument", "{" + ok + ",\"args\":[\"\xff\xfe\"]}", `request: not valid UTF-8`},
		{"an overlong UTF-8 encoding of '/'", "{" + ok + ",\"args\":[\"\xc0\xaf\"]}", `request: not valid UTF-8`},
		{"an unpaired high surrogate escape", `{` + ok + `,"args":["\ud800"]}`, `request: string contains an unpaired UTF-16 surrogate escape`},
		{"an unpaired low surrogate escape", `{` + ok + `,"args":["\udc00x"]}`, `request: string contains an unpaired UTF-16 surrogate escape`},
		{"a high surrogate followed by a non-surrogate", `{` + ok + `,"args":["\ud800\u0041"]}`, `request: string contains an unpaired UTF-16 surrogate escape`},
		{"a surrogate escape in a key", `{` + ok + `,"\ud800":1}`, `request: string contains an unpaired UTF-16 surrogate escape`},
		{"an env name with '='", `{` + ok + `,"env":{"A=B":"x"}}`, `request: env name "A=B" is not a valid variable name`},
		{"an env name starting with a digit", `{` + ok + `,"env":{"1A":"x"}}`, `request: env name "1A" is not a valid variable name`},
		{"an empty env name", `{` + ok + `,"env":{"":"x"}}`, `request: env name "" is not a valid variable name`},
		{"an env name with a newline", `{` + ok + `,"env":{"A\nB":"x"}}`, `request: env name "A\nB" is not a valid variable name`},
		{"an env value that is a number", `{` + ok + `,"env":{"V":1}}`, `request: env["V"] must be a string, not a number`},
		{"env as an array", `{` + ok + `,"env":["CC=gcc"]}`, `request: env must be an object of strings, not an array`},
		{"a fractional timeout", `{` + ok + `,"timeout_sec":1.5}`, `request: timeout_sec must be an integer that fits in 64 bits, not 1.5`},
		{"an exponent timeout", `{` + ok + `,"timeout_sec":1e3}`, `request: timeout_sec must be an integer that fits in 64 bits, not 1e3`},
		{"a timeout beyond 64 bits", `{` + ok + `,"timeout_sec":99999999999999999999}`, `request: timeout_sec must be an integer that fits in 64 bits, not 99999999999999999999`},
		{"a string timeout", `{` + ok + `,"timeout_sec":"600"}`, `request: timeout_sec must be an integer, not a string`},
		{"a null timeout", `{` + ok + `,"timeout_sec":null}`, `request: timeout_sec must be an integer, not null`},
		{"an unknown type", `{` + ok + `,"type":"exec"}`, `request: type "exec" is not "build" or "doctor"`},
		{"an empty type", `{` + ok + `,"type":""}`, `request: type "" is not "build" or "doctor"`},
		{"a request_id with a newline that could forge a log line", `{` + ok + `,"request_id":"a\nb"}`, `request: field "request_id" may hold only printable ASCII without spaces`},
		{"a request_id with spaces", `{` + ok + `,"request_id":"a b"}`, `request: field "request_id" may hold only printable ASCII without spaces`},
		{"an overlong request_id", `{` + ok + `,"request_id":"` + strings.Repeat("x", 129) + `"}`, `request: field "request_id" is longer than 128 bytes`},
		{"an unknown field name that is very long is cut in the message", `{"` + strings.Repeat("k", 200) + `":1}`, `request: unknown field "` + strings.Repeat("k", 64) + `..."`},
		{"a line over 64 KiB", `{` + ok + `,"args":["` + strings.Repeat("a", MaxRequestBytes) + `"]}`, fmt.Sprintf(`request: line of %d bytes is over the 65536-byte limit`, MaxRequestBytes+len(ok)+14)},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tt.line))
			if err == nil {
				t.Fatalf("accepted %#v", r)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got: %s\nwant: %s", err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestDecodeRequestNeverEchoesEnvValues(t *testing.T) {
	line := `{"schema_version":"1","command":"make","cwd":"/w","env":{"TOKEN":"s3cr3t\u0000"}}`
	_, err := DecodeRequest([]byte(line))
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("want an error that does not echo the value, got %v", err)
	}
}

func TestDecodeRequestSizeLimitCountsTheNewline(t *testing.T) {
	base := `{"schema_version":"1","command":"make","cwd":"/w","args":["`
	fill := MaxRequestBytes - len(base) - len(`"]}`) - 1
	line := base + strings.Repeat("a", fill) + `"]}` + "\n"
	if len(line) != MaxRequestBytes {
		t.Fatalf("test setup: line is %d bytes", len(line))
	}
	if _, err := DecodeRequest([]byte(line)); err != nil {
		t.Fatalf("a line of exactly the limit was refused: %v", err)
	}
	long := base + strings.Repeat("a", fill+1) + `"]}` + "\n"
	_, err := DecodeRequest([]byte(long))
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("a line one byte over the limit: got %v, want ErrTooLong", err)
	}
}

func TestDecodeRequestAllowsManyArgsWithinTheByteLimit(t *testing.T) {
	args := make([]string, 20000)
	r := &Request{SchemaVersion: "1", Command: "make", Cwd: "/w", Args: args}
	line, err := EncodeRequest(r)
	if err != nil {
		t.Fatalf("EncodeRequest of 20000 empty args: %v", err)
	}
	got, err := DecodeRequest(line)
	if err != nil || len(got.Args) != 20000 {
		t.Fatalf("DecodeRequest: %v (%d args)", err, len(got.Args))
	}
	// 100 000 args (issue 6) cannot fit in 64 KiB and are refused by size.
	r.Args = make([]string, 100000)
	if _, err := EncodeRequest(r); !errors.Is(err, ErrTooLong) {
		t.Fatalf("100000 args: got %v, want ErrTooLong", err)
	}
}

func TestEncodeRequestRoundTrips(t *testing.T) {
	r := &Request{SchemaVersion: "1", RequestID: "abc", Command: "make", Args: []string{"<a&b>", "x\ny", ""},
		Cwd: "/home/a b", TimeoutSec: ptr(0), Env: map[string]string{"CFLAGS": "-O2 -g"}}
	line, err := EncodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(line), "\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("not one line: %q", line)
	}
	got, err := DecodeRequest(line)
	if err != nil {
		t.Fatal(err)
	}
	want := *r
	want.Type = TypeBuild
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("got %#v want %#v", *got, want)
	}
}

func TestEncodeRequestRefusesWhatItCannotSendFaithfully(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"an argument that is not UTF-8", Request{SchemaVersion: "1", Command: "make", Cwd: "/w", Args: []string{"ok", "\xff"}}, `request: args[1] is not valid UTF-8`},
		{"a cwd that is not UTF-8", Request{SchemaVersion: "1", Command: "make", Cwd: "/w\xff"}, `request: cwd is not valid UTF-8`},
		{"an env value that is not UTF-8", Request{SchemaVersion: "1", Command: "make", Cwd: "/w", Env: map[string]string{"X": "\xff"}}, `request: env["X"] is not valid UTF-8`},
		{"an env name that is not a name", Request{SchemaVersion: "1", Command: "make", Cwd: "/w", Env: map[string]string{"A-B": "x"}}, `request: env name "A-B" is not a valid variable name`},
		{"a missing schema_version", Request{Command: "make", Cwd: "/w"}, `request: schema_version "" is not supported (this daemon speaks "1")`},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := EncodeRequest(&tt.req)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
			if tt.req.Validate() == nil {
				t.Fatalf("Validate accepted it")
			}
		})
	}
}

func TestDecodeControl(t *testing.T) {
	for _, sig := range []string{"INT", "TERM", "HUP", "QUIT"} {
		t.Run("accepts "+sig, func(t *testing.T) {
			line, err := EncodeControl(sig)
			if err != nil {
				t.Fatal(err)
			}
			c, err := DecodeControl(line)
			if err != nil || c.Type != "signal" || c.Signal != sig {
				t.Fatalf("got %+v, %v", c, err)
			}
		})
	}
	refused := []struct {
		name, line, want string
	}{
		{"KILL, which is not forwardable", `{"type":"signal","signal":"KILL"}`, `control: signal "KILL" is not one of INT, TERM, HUP, QUIT`},
		{"a signal number", `{"type":"signal","signal":9}`, `control: signal must be a string, not a number`},
		{"a lower-case name", `{"type":"signal","signal":"int"}`, `control: signal "int" is not one of INT, TERM, HUP, QUIT`},
		{"a SIG-prefixed name", `{"type":"signal","signal":"SIGINT"}`, `control: signal "SIGINT" is not one of INT, TERM, HUP, QUIT`},
		{"another type", `{"type":"stdin","signal":"INT"}`, `control: type "stdin" is not "signal"`},
		{"a duplicate signal", `{"type":"signal","signal":"INT","signal":"TERM"}`, `control: duplicate field "signal"`},
		{"a case-folded key", `{"type":"signal","Signal":"INT"}`, `control: field "Signal" differs only in case from "signal" (keys are case-sensitive)`},
		{"an extra field", `{"type":"signal","signal":"INT","pid":1}`, `control: unknown field "pid"`},
		{"a missing signal", `{"type":"signal"}`, `control: missing field "signal"`},
		{"a missing type", `{"signal":"INT"}`, `control: missing field "type"`},
		{"an empty line", ``, `control: empty line`},
		{"a line over 1 KiB", `{"type":"signal","signal":"INT","x":"` + strings.Repeat("a", 1024) + `"}`, `control: line of 1063 bytes is over the 1024-byte limit`},
	}
	for _, tt := range refused {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			c, err := DecodeControl([]byte(tt.line))
			if err == nil {
				t.Fatalf("accepted %+v", c)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
	if _, err := EncodeControl("KILL"); err == nil {
		t.Fatalf("EncodeControl(KILL) succeeded")
	}
}

// BenchmarkDecodeRequest decodes the worst honest case: a line at the 64 KiB
// cap holding as many arguments as fit.
func BenchmarkDecodeRequest(b *testing.B) {
	r := &Request{SchemaVersion: "1", Command: "make", Cwd: "/w", Args: make([]string, 21000)}
	line, err := EncodeRequest(r)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := DecodeRequest(line); err != nil {
			b.Fatal(err)
		}
	}
}
