package mapper

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/build-service/build-service/protocol"
)

// cpuTime is the CPU time this process has used so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// symlinkChain makes ws/l1 -> "x/../x/../.../l2" -> ... -> ws/Makefile:
// 40 links (the kernel's limit) with ~4 KiB targets, so that one path costs
// some 60 000 lookups and a request of a few thousand such paths costs
// minutes of CPU.
func symlinkChain(t *testing.T, ws string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(ws, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x/../", 800)
	for i := 1; i <= maxSymlinks; i++ {
		next := "Makefile"
		if i < maxSymlinks {
			next = "l" + strconv.Itoa(i+1)
		}
		if err := os.Symlink(pad+next, filepath.Join(ws, "l"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAbandonedWalkStops: a hostile caller sends one request naming
// thousands of paths that each take tens of milliseconds to resolve. Map
// gives up at its deadline; the walk it abandoned must stop too, or every
// such request leaves a root thread burning a CPU for minutes (and enough
// of them exhaust the daemon's threads).
func TestAbandonedWalkStops(t *testing.T) {
	w := newAttackWorld(t)
	symlinkChain(t, w.ws)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"-f through 40 long symlinks, 3000 times", repeat("-fl1", 3000), nil},
		{"-I through 40 long symlinks, 3000 times", repeat("-Il1", 3000), nil},
		{"-W through 40 long symlinks, 3000 times", repeat("-Wl1", 3000), nil},
		{"MAKEFLAGS -I through 40 long symlinks", nil, map[string]string{"MAKEFLAGS": strings.Repeat(" -I"+w.ws+"/l1", 3000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := w.m.Map(ctx, Caller{Name: "ws", UID: os.Getuid(), GID: os.Getgid()},
				protocol.Request{Command: "make", Args: tc.args, Cwd: w.ws, Env: tc.env})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Map = %v, want the deadline (the test's paths are not slow enough?)", err)
			}
			time.Sleep(100 * time.Millisecond) // let a walk that checks ctx notice
			before := cpuTime(t)
			time.Sleep(time.Second)
			if used := cpuTime(t) - before; used > 300*time.Millisecond {
				t.Fatalf("the abandoned walk went on: %v of CPU in the second after Map returned", used)
			}
		})
	}
}

func TestResolveStopsWhenContextEnds(t *testing.T) {
	w := newAttackWorld(t)
	symlinkChain(t, w.ws)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := resolvePath(ctx, filepath.Join(w.ws, "l1")); !errors.Is(r.Err, context.Canceled) || r.Path != "" || r.Exists {
		t.Fatalf("resolvePath with an ended context = %+v, want context.Canceled and nothing resolved", r)
	}
	if r := resolvePath(context.Background(), filepath.Join(w.ws, "l1")); r.Err != nil || r.Path != filepath.Join(w.ws, "Makefile") {
		t.Fatalf("resolvePath of the chain = %+v, want %s", r, filepath.Join(w.ws, "Makefile"))
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
