package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/protocol"
)

func TestStdoutStreamsWhileTheBuildRuns(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	// The build waits for a file the test creates only once the first
	// chunk has arrived: output held until the end would time the build out.
	gofile := filepath.Join(ws, "go")
	c := &collector{}
	c.onOutput = func(ev protocol.Event) {
		if strings.Contains(ev.Data, "first") {
			writeFile(t, gofile, "")
		}
	}
	j := job(u, ws, "/bin/sh", "-c", "echo first; while [ ! -e go ]; do sleep 0.05; done; echo second >&2; printf 'no newline at the end'")
	j.Timeout = 20 * time.Second
	res := x.Run(context.Background(), j, c.emit, nil)
	out, errOut := c.out()
	if res.Code != 0 || res.TimedOut || out != "first\nno newline at the end" || errOut != "second\n" {
		t.Errorf("result %+v\n%s", res, c)
	}
	assertNothingLeft(t, u)
}

func TestOrderWithinEachStreamIsKept(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	res, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", "i=0; while [ $i -lt 5000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"))
	out, errOut := c.out()
	var wantOut, wantErr strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&wantOut, "out%d\n", i)
		fmt.Fprintf(&wantErr, "err%d\n", i)
	}
	if res.Code != 0 || out != wantOut.String() || errOut != wantErr.String() {
		t.Errorf("result %+v; stdout %d bytes (want %d), stderr %d bytes (want %d)", res, len(out), wantOut.Len(), len(errOut), wantErr.Len())
	}
}

// TestMultiByteCharactersSplitAtEveryOffsetComeThroughIntact makes the read
// boundary fall inside a character at each offset: the build writes a
// marker and the first bytes, then waits until the test has seen the
// marker (so those bytes were read alone) before writing the rest.
func TestMultiByteCharactersSplitAtEveryOffsetComeThroughIntact(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	for _, ch := range []string{"é", "€", "😀"} {
		for k := 1; k < len(ch); k++ {
			t.Run(fmt.Sprintf("%q split after byte %d", ch, k), func(t *testing.T) {
				gofile := filepath.Join(ws, "go")
				os.Remove(gofile)
				c := &collector{}
				c.onOutput = func(ev protocol.Event) {
					if strings.Contains(ev.Data, "<") {
						writeFile(t, gofile, "")
					}
				}
				script := fmt.Sprintf("printf '<%s'; while [ ! -e go ]; do sleep 0.02; done; printf '%s>'", octal(ch[:k]), octal(ch[k:]))
				res := x.Run(context.Background(), job(u, ws, "/bin/sh", "-c", script), c.emit, nil)
				out, _ := c.out()
				if res.Code != 0 || out != "<"+ch+">" {
					t.Errorf("got %q, want %q (result %+v)", out, "<"+ch+">", res)
				}
				var pieces []string
				for _, ev := range c.events {
					pieces = append(pieces, ev.Data)
				}
				if len(pieces) < 2 {
					t.Errorf("the output came in one piece %q: the split was not exercised", pieces)
				}
			})
		}
	}
	t.Run("a final partial sequence comes out as U+FFFD", func(t *testing.T) {
		res, c := runJob(t, x, job(u, ws, "/bin/sh", "-c", `printf 'end\360\237'`))
		if out, _ := c.out(); res.Code != 0 || out != "end\uFFFD\uFFFD" {
			t.Errorf("got %q", out)
		}
	})
	assertNothingLeft(t, u)
}

func octal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, `\%03o`, s[i])
	}
	return b.String()
}

// chunkReader returns its data in the given chunk sizes.
type chunkReader struct {
	data   []byte
	chunks []int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.chunks) > 0 {
		n = min(r.chunks[0], n)
		r.chunks = r.chunks[1:]
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func (r *chunkReader) Close() error { return nil }

// TestThePumpKeepsCharactersSplitAtEveryReadOffset feeds the pump a text
// of mixed 1- to 4-byte characters and invalid bytes, cut at every offset.
func TestThePumpKeepsCharactersSplitAtEveryReadOffset(t *testing.T) {
	text := []byte("ascii é € 😀 \xff bad \xe2\x82 cut 𝄞 end")
	want := strings.ToValidUTF8(string(text), "\uFFFD")
	// ToValidUTF8 folds runs of invalid bytes into one U+FFFD; the stream
	// replaces each invalid byte ("\xe2\x82" is two).
	want = strings.Replace(want, "bad \uFFFD cut", "bad \uFFFD\uFFFD cut", 1)
	for cut := 1; cut < len(text); cut++ {
		var got strings.Builder
		o := newOutput(func(ev protocol.Event) error {
			got.WriteString(ev.Data)
			return nil
		})
		p := o.start(protocol.EventStdout, &chunkReader{data: text, chunks: []int{cut}})
		<-p.done
		if got.String() != want {
			t.Errorf("cut at %d: got %q, want %q", cut, got.String(), want)
		}
	}
}

// rss returns this process's resident set size in bytes.
func rss(t testing.TB, field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestASlowClientBlocksTheBuildNotTheDaemonsMemory stalls the client for
// 5 s with 256 MiB pending: the daemon's RSS stays flat, the build blocks on
// its pipe, and afterwards every byte arrives in order.
func TestASlowClientBlocksTheBuildNotTheDaemonsMemory(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	const total = 256 << 20
	const line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
	want := sha256.New()
	for n := 0; n < total; n += len(line) {
		want.Write([]byte(line[:min(len(line), total-n)]))
	}
	baseline := rss(t, "VmRSS")
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if r := rss(t, "VmRSS"); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	got := sha256.New()
	var n int64
	var stalled bool
	var stallRSS int64
	var buf []byte
	emit := func(ev protocol.Event) error {
		if !stalled {
			stalled = true
			time.Sleep(5 * time.Second) // the client stops reading
			stallRSS = rss(t, "VmRSS")
		}
		buf = append(buf[:0], ev.Data...)
		got.Write(buf)
		n += int64(len(ev.Data))
		return nil
	}
	j := job(u, ws, "/bin/sh", "-c", fmt.Sprintf("yes %s | head -c %d", strings.TrimSuffix(line, "\n"), total))
	res := x.Run(context.Background(), j, emit, nil)
	close(stop)
	wg.Wait()
	if res.Code != 0 {
		t.Fatalf("result %+v", res)
	}
	if n != total || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("received %d bytes (want %d), content equal: %v", n, total, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	growth := peak.Load() - baseline
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("RSS baseline %d MiB, during the stall %d MiB, peak %d MiB; heap sys %d MiB, inuse %d, released %d, numgc %d", baseline>>20, stallRSS>>20, peak.Load()>>20, ms.HeapSys>>20, ms.HeapInuse>>20, ms.HeapReleased>>20, ms.NumGC)
	if growth > 64<<20 {
		t.Errorf("RSS grew by %d MiB with a stalled client, want under 64 MiB", growth>>20)
	}
	assertNothingLeft(t, u)
}

// BenchmarkOutputThroughput streams 1 GiB through the pipe, the pumps and
// the event encoding, reporting MB/s and the process's peak RSS.
func BenchmarkOutputThroughput(b *testing.B) {
	testenv.RequireRoot(b)
	u := testenv.Carol(b)
	x := newExecutor(b, Options{})
	ws := workspace(b, u)
	const total = 1 << 30
	b.SetBytes(total)
	for i := 0; i < b.N; i++ {
		var n int64
		emit := func(ev protocol.Event) error {
			n += int64(len(ev.Data))
			return protocol.WriteEvent(io.Discard, ev)
		}
		// Build-log-like text (NUL bytes would measure JSON's \u0000).
		script := fmt.Sprintf("yes 'cc -O2 -c src/module.c -o build/module.o' | head -c %d", total)
		res := x.Run(context.Background(), job(u, ws, "/bin/sh", "-c", script), emit, nil)
		if res.Code != 0 || n != total {
			b.Fatalf("result %+v, %d bytes", res, n)
		}
	}
	b.ReportMetric(float64(rss(b, "VmHWM")>>20), "peak-RSS-MiB")
}
