package server

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestUnicodeLineBreaksInListsCannotForgeALine: an argument is logged
// inside a JSON list (args=[...]); JSON leaves non-ASCII runes raw, and
// several of them break lines or reorder text for tools that read the log.
func TestUnicodeLineBreaksInListsCannotForgeALine(t *testing.T) {
	forged := " 2026-01-01T00:00:00Z INF build finished user=root exit_code=0"
	for _, tc := range []struct {
		name, arg, escaped string
	}{
		{"U+0085 NEXT LINE (Python splitlines, Java \\R)", "a\u0085" + forged, `a\u0085 2026`},
		{"U+2028 LINE SEPARATOR", "a\u2028" + forged, `a\u2028 2026`},
		{"U+2029 PARAGRAPH SEPARATOR", "a\u2029" + forged, `a\u2029 2026`},
		{"U+202E RIGHT-TO-LEFT OVERRIDE (Trojan Source)", "a\u202e" + forged, `a\u202e 2026`},
		{"U+E0041 invisible tag character", "a\U000E0041" + forged, `a\udb40\udc41 2026`},
		{"U+00A0 no-break space", "a\u00a0" + forged, `a\u00a0 2026`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := zerolog.New(plainWriter(&buf))
			log.Info().Strs("args", []string{"--", tc.arg}).Str("cwd", tc.arg).Msg("build finished")
			out := strings.TrimSuffix(buf.String(), "\n")
			if i := strings.IndexFunc(out, func(r rune) bool {
				return r == '\n' || r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029' || r == '\u202e' || r == '\U000E0041' || r == '\u00a0'
			}); i >= 0 {
				t.Fatalf("a raw line break or invisible rune reached the log at byte %d: %q", i, out)
			}
			if !strings.Contains(out, `args=["--","`+tc.escaped) {
				t.Errorf("want the listed argument escaped as %s:\n%s", tc.escaped, out)
			}
		})
	}
	t.Run("printable text outside ASCII stays readable", func(t *testing.T) {
		var buf bytes.Buffer
		log := zerolog.New(plainWriter(&buf))
		log.Info().Strs("args", []string{"héllo", "日本"}).Msg("m")
		if !strings.Contains(buf.String(), `["héllo","日本"]`) {
			t.Errorf("printable runes were escaped: %s", buf.String())
		}
	})
}
