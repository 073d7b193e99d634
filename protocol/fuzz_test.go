package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeRequest holds DecodeRequest to its invariants on any input:
// it never panics; every error is one line wrapping ErrMalformed; an
// accepted request re-encodes and decodes to the same value; and an
// accepted line has no duplicate or case-folded key and no string that
// encoding/json would have altered. Seeds: testdata/fuzz/FuzzDecodeRequest.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"schema_version":"1","request_id":"r-1","command":"make","args":["-j4","all"],"cwd":"/home/alice/project","timeout_sec":600,"env":{"CFLAGS":"-O2"}}` + "\n"))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := DecodeRequest(line)
		if err != nil {
			if r != nil {
				t.Fatalf("both a request and an error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") || !utf8.ValidString(err.Error()) {
				t.Fatalf("error is not one clean line: %q", err)
			}
			return
		}
		if len(line) > MaxRequestBytes || !utf8.Valid(line) || bytes.IndexByte(line, 0) >= 0 {
			t.Fatalf("accepted a line the framing rules refuse: %q", line)
		}
		if dup := duplicateKey(line); dup != "" {
			t.Fatalf("accepted a line with a duplicate or case-folded key %q: %q", dup, line)
		}
		for _, s := range append([]string{r.Command, r.Cwd, r.RequestID}, r.Args...) {
			if strings.ContainsRune(s, 0) {
				t.Fatalf("accepted a NUL: %q", line)
			}
		}
		for k, v := range r.Env {
			if ValidEnvName(k) != nil || strings.ContainsRune(v, 0) {
				t.Fatalf("accepted env %q: %q", k, line)
			}
		}
		again, err := EncodeRequest(r)
		if errors.Is(err, ErrTooLong) {
			return // the canonical form may escape more (U+2028) and outgrow the cap
		}
		if err != nil {
			t.Fatalf("an accepted request does not re-encode: %v\n%q", err, line)
		}
		back, err := DecodeRequest(again)
		if err != nil {
			t.Fatalf("re-encoded request refused: %v\n%q", err, again)
		}
		if !reflect.DeepEqual(r, back) {
			t.Fatalf("round trip changed the request:\n%#v\n%#v", r, back)
		}
	})
}

// duplicateKey walks any JSON independently of DecodeRequest and returns a
// key that repeats within one object (case-folded at the top level, where
// encoding/json would fold it), or "".
func duplicateKey(line []byte) string {
	dec := json.NewDecoder(bytes.NewReader(line))
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if s, ok := tok.(string); ok {
				k := s
				if len(stack) == 1 { // request keys fold; env names are case-sensitive
					k = strings.ToLower(s)
				}
				if top.keys[k] {
					return s
				}
				top.keys[k] = true
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true, keys: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
}

func TestDuplicateKeyFinderFindsWhatTheFuzzerReliesOn(t *testing.T) {
	for line, want := range map[string]string{
		`{"a":1,"A":2}`:                 "A",
		`{"a":1,"b":{"c":1,"C":2}}`:     "",
		`{"a":1,"b":{"c":1,"c":2}}`:     "c",
		`{"a":[{"x":1},{"x":1}],"a":2}`: "a",
		`{"a":1,"b":[1,{"a":1}]}`:       "",
	} {
		if got := duplicateKey([]byte(line)); got != want {
			t.Errorf("%s: got %q want %q", line, got, want)
		}
	}
}
