package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestEventsKeepTheWireShapeOfDesignMD(t *testing.T) {
	denyStderr, denyExit := DeniedEvents([]string{"-C ../../etc leaves the workspace", "bad\nreason"})
	sig := ExitEvent(130, false)
	sig.Signal = "INT"
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"a stdout event", OutputEvent(EventStdout, "gcc -c <x> & y\n"), `{"type":"stdout","data":"gcc -c <x> & y\n"}`},
		{"a stderr event", OutputEvent(EventStderr, "warning: ..."), `{"type":"stderr","data":"warning: ..."}`},
		{"a successful exit carries code and timed_out", ExitEvent(0, false), `{"type":"exit","code":0,"timed_out":false}`},
		{"a timeout", ExitEvent(124, true), `{"type":"exit","code":124,"timed_out":true}`},
		{"a death by SIGINT", sig, `{"type":"exit","code":130,"timed_out":false,"signal":"INT"}`},
		{"a denial's stderr line is marked and one line", denyStderr, `{"type":"stderr","data":"build-service: denied: -C ../../etc leaves the workspace; bad reason\n","denied":true}`},
		{"a denial's exit", denyExit, `{"type":"exit","code":126,"timed_out":false,"denied":true,"reasons":["-C ../../etc leaves the workspace","bad\nreason"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteEvent(&b, tt.ev); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want+"\n" {
				t.Fatalf("got  %s\nwant %s", b.String(), tt.want)
			}
			back, err := DecodeEvent(b.Bytes())
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if back.Type != tt.ev.Type || back.Data != tt.ev.Data {
				t.Fatalf("round trip changed the event: %+v", back)
			}
		})
	}
}

func TestDecodeEventRefusesWhatTheClientCannotActOn(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{"garbage", "HTTP/1.1 400 Bad Request", "event is not a JSON object: invalid character 'H' looking for beginning of value"},
		{"an object without a type", `{"data":"x"}`, "event has no type"},
		{"an exit without a code", `{"type":"exit","timed_out":false}`, "exit event has no code"},
		{"an exit code beyond 255", `{"type":"exit","code":300,"timed_out":false}`, "exit event code 300 is outside 0-255"},
		{"a negative exit code", `{"type":"exit","code":-1,"timed_out":false}`, "exit event code -1 is outside 0-255"},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tt.line))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v want %s", err, tt.want)
			}
		})
	}
	t.Run("ignores fields a newer daemon adds", func(t *testing.T) {
		ev, err := DecodeEvent([]byte(`{"type":"exit","code":3,"timed_out":false,"queue_position":2}`))
		if err != nil || *ev.Code != 3 {
			t.Fatalf("got %+v %v", ev, err)
		}
	})
}

func TestEncoderNeverInterleavesLines(t *testing.T) {
	var b bytes.Buffer
	enc := NewEncoder(&b)
	var wg sync.WaitGroup
	long := strings.Repeat("x", 100000)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if err := enc.Encode(OutputEvent(EventStdout, long)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 160 {
		t.Fatalf("got %d lines", len(lines))
	}
	for i, l := range lines {
		ev, err := DecodeEvent([]byte(l))
		if err != nil || ev.Data != long {
			t.Fatalf("line %d is damaged: %v", i, err)
		}
	}
}

func TestReadLine(t *testing.T) {
	t.Run("reads a line far longer than the reader's buffer", func(t *testing.T) {
		in := strings.Repeat("a", 10<<20) + "\nnext\n"
		r := bufio.NewReaderSize(strings.NewReader(in), 4096)
		line, err := ReadLine(r, 16<<20)
		if err != nil || len(line) != 10<<20+1 {
			t.Fatalf("got %d bytes, %v", len(line), err)
		}
		line, err = ReadLine(r, 16<<20)
		if err != nil || string(line) != "next\n" {
			t.Fatalf("second line %q %v", line, err)
		}
		if _, err := ReadLine(r, 16<<20); err != io.EOF {
			t.Fatalf("at the end: %v, want io.EOF", err)
		}
	})
	t.Run("refuses a line over the limit without reading it all", func(t *testing.T) {
		r := bufio.NewReaderSize(strings.NewReader(strings.Repeat("a", 1<<20)+"\n"), 4096)
		if _, err := ReadLine(r, MaxControlBytes); !errors.Is(err, ErrTooLong) {
			t.Fatalf("got %v, want ErrTooLong", err)
		}
		if r.Buffered() > 4096 {
			t.Fatalf("buffered %d bytes", r.Buffered())
		}
	})
	t.Run("says whether an over-long line's newline was already read", func(t *testing.T) {
		for _, c := range []struct {
			input    string
			consumed bool
		}{
			{strings.Repeat("a", 2000) + "\nnext\n", true},   // fits one read: the newline came with it
			{strings.Repeat("a", 1<<20) + "\nnext\n", false}, // the rest is still unread
		} {
			r := bufio.NewReaderSize(strings.NewReader(c.input), 4096)
			_, err := ReadLine(r, MaxControlBytes)
			var tl *LineTooLongError
			if !errors.As(err, &tl) || tl.Consumed != c.consumed {
				t.Errorf("%d bytes: got %v (%+v), want Consumed=%v", len(c.input), err, tl, c.consumed)
			}
		}
	})
	t.Run("a line of exactly the limit is fine", func(t *testing.T) {
		r := bufio.NewReader(strings.NewReader(strings.Repeat("a", 1023) + "\n"))
		if _, err := ReadLine(r, MaxControlBytes); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a stream ending inside a line is unexpected EOF", func(t *testing.T) {
		r := bufio.NewReader(strings.NewReader(`{"type":"exit"`))
		if _, err := ReadLine(r, 100); err != io.ErrUnexpectedEOF {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSignals(t *testing.T) {
	for name, code := range map[string]int{"INT": 130, "TERM": 143, "HUP": 129, "QUIT": 131} {
		sig, ok := SignalNumber(name)
		if !ok || ExitCodeForSignal(int(sig)) != code || SignalName(sig) != name {
			t.Errorf("%s: number %d ok %v code %d name %q", name, sig, ok, ExitCodeForSignal(int(sig)), SignalName(sig))
		}
	}
	if _, ok := SignalNumber("KILL"); ok {
		t.Errorf("KILL is forwardable")
	}
}
