package protocol

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

// whole converts a stream in one go; every split of it must give the same.
func whole(b []byte) string {
	var u UTF8Stream
	return u.Feed(b) + u.Flush()
}

func TestUTF8StreamKeepsCharactersSplitAtEveryOffset(t *testing.T) {
	inputs := map[string][]byte{
		"two-, three- and four-byte characters": []byte("aé€😀z日本語\n"),
		"invalid bytes among valid characters":  []byte("a\xffé\xc0\xaf€\xed\xa0\x80😀\xf0\x9f\x98z"),
		"a stream that ends inside a character": []byte("ok 😀\xf0\x9f\x98"),
		"continuation bytes with no start":      []byte("\x80\x80\x80é\x80"),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			want := whole(in)
			if !utf8.ValidString(want) {
				t.Fatalf("whole conversion is not valid UTF-8: %q", want)
			}
			for i := 0; i <= len(in); i++ {
				var u UTF8Stream
				got := u.Feed(in[:i]) + u.Feed(in[i:]) + u.Flush()
				if got != want {
					t.Fatalf("split at %d: got %q want %q", i, got, want)
				}
			}
			// One byte per Feed: the worst case for a pump reading slowly.
			var u UTF8Stream
			var got strings.Builder
			for i := range in {
				got.WriteString(u.Feed(in[i : i+1]))
			}
			got.WriteString(u.Flush())
			if got.String() != want {
				t.Fatalf("byte by byte: got %q want %q", got.String(), want)
			}
		})
	}
}

func TestUTF8StreamIsByteExactForValidText(t *testing.T) {
	in := "gcc -c main.c -o main.o\nwarning: ‘x’ unused 😀\n"
	if got := whole([]byte(in)); got != in {
		t.Fatalf("got %q", got)
	}
}

func TestUTF8StreamReplacesEachInvalidByte(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a lone 0xff", "a\xffb", "a\uFFFDb"},
		{"an overlong slash", "\xc0\xaf", "\uFFFD\uFFFD"},
		{"an encoded surrogate", "\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"a truncated emoji at the end of the stream", "x\xf0\x9f\x98", "x\uFFFD\uFFFD\uFFFD"},
		{"a truncated emoji before more text", "\xf0\x9f\x98x", "\uFFFD\uFFFD\uFFFDx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := whole([]byte(tt.in)); got != tt.want {
				t.Fatalf("got %q want %q", got, tt.want)
			}
		})
	}
}

func TestUTF8StreamRandomSplitsMatchTheWholeConversion(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := [][]byte{[]byte("a"), []byte("é"), []byte("€"), []byte("😀"), {0xff}, {0x80}, {0xf0, 0x9f}, {0xe2}, []byte("\n")}
	for n := 0; n < 2000; n++ {
		var in bytes.Buffer
		for i := rng.Intn(40); i > 0; i-- {
			in.Write(alphabet[rng.Intn(len(alphabet))])
		}
		b := in.Bytes()
		want := whole(b)
		var u UTF8Stream
		var got strings.Builder
		for len(b) > 0 {
			k := rng.Intn(len(b)) + 1
			got.WriteString(u.Feed(b[:k]))
			b = b[k:]
		}
		got.WriteString(u.Flush())
		if got.String() != want {
			t.Fatalf("input %q: got %q want %q", in.Bytes(), got.String(), want)
		}
	}
}

func TestUTF8StreamDoesNotKeepTheCallersBuffer(t *testing.T) {
	var u UTF8Stream
	buf := []byte("\xe2\x82")
	if s := u.Feed(buf); s != "" {
		t.Fatalf("got %q before the character was complete", s)
	}
	buf[0], buf[1] = 'x', 'y' // the pump reuses its read buffer
	if s := u.Feed([]byte{0xac}); s != "€" {
		t.Fatalf("got %q, want the euro sign", s)
	}
}
