package server

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/rs/zerolog"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/internal/strictdir"
)

// LogFileName is the main log's name inside logging.directory.
const LogFileName = "build-service.log"

// NewLogger builds the daemon's logger from cfg: plain text lines
// (key=value, any value with a space, quote, backslash or control byte
// quoted) to console (stderr, for journald) and/or a lumberjack-rotated file.
// The returned closer closes the file; call it after the last log line.
func NewLogger(cfg config.Logging, console io.Writer) (zerolog.Logger, io.Closer, error) {
	level := zerolog.InfoLevel
	if cfg.Level != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(cfg.Level))
		if err != nil {
			return zerolog.Nop(), nopCloser{}, fmt.Errorf("logging.level %q: %w", cfg.Level, err)
		}
		level = l
	}
	var writers []io.Writer
	var closer io.Closer = nopCloser{}
	if cfg.Console || cfg.Directory == "" {
		writers = append(writers, plainWriter(console))
	}
	if cfg.Directory != "" {
		// Root appends to files here by name: a directory another user
		// could write would let them plant a symlink to any file.
		if err := strictdir.Check(cfg.Directory); err != nil {
			return zerolog.Nop(), nopCloser{}, fmt.Errorf("logging.directory: %w", err)
		}
		if err := os.MkdirAll(cfg.Directory, 0o750); err != nil {
			return zerolog.Nop(), nopCloser{}, fmt.Errorf("logging.directory: %w", err)
		}
		if err := strictdir.Check(cfg.Directory); err != nil {
			return zerolog.Nop(), nopCloser{}, fmt.Errorf("logging.directory: %w", err)
		}
		lj := &lumberjack.Logger{
			Filename:   filepath.Join(cfg.Directory, LogFileName),
			MaxSize:    cfg.MaxSizeMB,
			MaxBackups: cfg.MaxBackups,
		}
		writers = append(writers, plainWriter(lj))
		closer = lj
	}
	var w io.Writer = writers[0]
	if len(writers) > 1 {
		w = zerolog.MultiLevelWriter(writers...)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), closer, nil
}

// plainWriter renders zerolog's JSON as one plain-text line per event.
// zerolog's console writer already quotes field values that need it and
// writes arrays as JSON; the message is quoted here too, so nothing a
// client sends can start a new line.
func plainWriter(out io.Writer) io.Writer {
	return zerolog.ConsoleWriter{
		Out:        out,
		NoColor:    true,
		TimeFormat: time.RFC3339Nano,
		FormatMessage: func(i any) string {
			if i == nil {
				return ""
			}
			s := fmt.Sprint(i)
			if needsQuote(s) {
				return strconv.Quote(s)
			}
			return s
		},
		// A string value arrives here already quoted by strconv.Quote
		// when it needs it; a list arrives as JSON, which leaves every
		// non-ASCII rune raw, including U+0085 NEXT LINE and U+2028/9
		// (line breaks to Python's splitlines, Java's \R, many viewers)
		// and bidi overrides such as U+202E, so an argument could show a
		// forged line. Escape them as JSON does control bytes.
		FormatFieldValue: func(i any) string { return escapeUnprintable(fmt.Sprintf("%s", i)) },
	}
}

// escapeUnprintable writes every non-ASCII rune that is not printable as a
// \uXXXX escape (a UTF-16 pair above U+FFFF), valid inside a JSON string;
// ASCII is left alone (JSON and strconv.Quote already escaped its controls).
func escapeUnprintable(s string) string {
	clean := true
	for _, r := range s {
		if r >= 0x80 && !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 || unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
		} else {
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}

func needsQuote(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\' || s[i] >= 0x80 {
			return true
		}
	}
	return false
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
