package protocol

import (
	"strings"
	"unicode/utf8"
)

// UTF8Stream turns a byte stream into valid UTF-8 text piece by piece: each
// invalid byte becomes U+FFFD, exactly as if the whole stream had been
// converted at once, while a multi-byte character split across two Feed
// calls is held back and comes out whole. The zero value is ready to use;
// it is not safe for concurrent use (one per stream).
type UTF8Stream struct {
	pending []byte // a valid but incomplete sequence: at most 3 bytes
}

// Feed returns the text of p that is complete so far.
func (u *UTF8Stream) Feed(p []byte) string {
	buf := p
	if len(u.pending) > 0 {
		buf = append(u.pending, p...)
		u.pending = nil
	}
	cut := incompleteTail(buf)
	if cut < len(buf) {
		u.pending = append([]byte(nil), buf[cut:]...)
		buf = buf[:cut]
	}
	return lossy(buf)
}

// Flush returns whatever Feed held back, as replacement characters (the
// stream ended inside a character), and resets the stream.
func (u *UTF8Stream) Flush() string {
	s := lossy(u.pending)
	u.pending = nil
	return s
}

// incompleteTail returns where a trailing, valid but unfinished multi-byte
// sequence starts, or len(b). A sequence is at most 4 bytes, so its start is
// among the last 3; the start byte is never a continuation byte, so a
// decoder walking from the front reaches it exactly, whatever precedes it.
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// lossy converts b replacing every invalid byte with U+FFFD (one per byte,
// as utf8.DecodeRune consumes them), which keeps the result independent of
// where the stream was split.
func lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var s strings.Builder
	s.Grow(len(b) + 8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			s.WriteRune(utf8.RuneError)
		} else {
			s.Write(b[:n])
		}
		b = b[n:]
	}
	return s.String()
}
