package mapper

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	defer func(old int) { maxLookups = old }(maxLookups)
	maxLookups = math.MaxInt // this test is about the deadline, not the budget
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
	if r := resolvePath(newWalk(ctx), filepath.Join(w.ws, "l1")); !errors.Is(r.Err, context.Canceled) || r.Path != "" || r.Exists {
		t.Fatalf("resolvePath with an ended context = %+v, want context.Canceled and nothing resolved", r)
	}
	if r := resolvePath(newWalk(context.Background()), filepath.Join(w.ws, "l1")); r.Err != nil || r.Path != filepath.Join(w.ws, "Makefile") {
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

// TestLookupBudget: requests whose resolution grows without bound (long
// symlink chains, MAKEFILES names times -I directories) are cut off by the
// per-request lookup budget, well before the deadline, with a fact the
// policy denies on; an honest large request is not.
func TestLookupBudget(t *testing.T) {
	w := newAttackWorld(t)
	symlinkChain(t, w.ws)
	var dirs []string
	for i := 0; i < 300; i++ {
		d := fmt.Sprintf("inc%d", i)
		if err := os.Mkdir(filepath.Join(w.ws, d), 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, "-I"+d)
	}
	var names []string
	for i := 0; i < 3000; i++ {
		names = append(names, fmt.Sprintf("n%d.mk", i))
	}
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		exhausted bool
		argvEmpty bool // a path make is handed could not be resolved
	}{
		{"attack: -f through 40 long symlinks, 3000 times", repeat("-fl1", 3000), nil, true, true},
		{"attack: 3000 MAKEFILES names searched in 300 -I directories", append(dirs, "MAKEFILES="+strings.Join(names, " ")), nil, true, false},
		{"attack: MAKEFILES from the environment searched in 300 -I directories", dirs, map[string]string{"MAKEFILES": strings.Join(names, " ")}, true, false},
		{"an honest request naming 3000 makefiles", repeat("-fMakefile", 3000), nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			f, err := w.m.Map(context.Background(), Caller{Name: "ws", UID: os.Getuid(), GID: os.Getgid()},
				protocol.Request{Command: "make", Args: tc.args, Cwd: w.ws, Env: tc.env})
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if d := time.Since(start); d > ResolveTimeout/2 {
				t.Errorf("Map took %v", d)
			}
			exhausted := 0
			for _, l := range [][]PathFact{f.Make.Makefiles, f.Make.Includes, f.Make.OtherFiles} {
				for _, pf := range l {
					if strings.Contains(pf.Error, "too many path lookups") {
						exhausted++
						if pf.Resolved != "" || pf.Inside || pf.Exists {
							t.Errorf("%s %s hit the budget but claims %+v", pf.Option, pf.Arg, pf)
						}
					}
				}
			}

			if (exhausted > 0) != tc.exhausted {
				t.Errorf("%d paths hit the lookup budget, want exhausted=%v", exhausted, tc.exhausted)
			}
			if tc.argvEmpty != (len(f.Make.Argv) == 0) {
				t.Errorf("argv %d words long, want empty=%v", len(f.Make.Argv), tc.argvEmpty)
			}
		})
	}
}

// TestIncludeSearchCutShortIsNotAMiss: a MAKEFILES name whose search of the
// -I directories is cut short by the budget must not be reported as
// missing (make would read it from a directory the search never reached).
func TestIncludeSearchCutShortIsNotAMiss(t *testing.T) {
	w := newAttackWorld(t)
	var includes []PathFact
	for i := 0; i < 50; i++ {
		d := filepath.Join(w.ws, fmt.Sprintf("inc%d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		includes = append(includes, PathFact{Option: "-I", Source: "argv", Resolved: d, Exists: true, IsDir: true})
	}
	if err := os.WriteFile(filepath.Join(w.ws, "inc49", "found.mk"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pf := PathFact{Option: "MAKEFILES", Arg: "found.mk", Source: "MAKEFILES", Host: filepath.Join(w.ws, "found.mk"),
		Resolved: filepath.Join(w.ws, "found.mk"), Mapped: true, Inside: true}
	full := searchIncludePath(newWalk(context.Background()), pf, "found.mk", includes, w.ws)
	if !full.Exists || full.Resolved != filepath.Join(w.ws, "inc49", "found.mk") {
		t.Fatalf("with budget to spare the search finds %+v", full)
	}
	short := searchIncludePath(&walk{ctx: context.Background(), left: 100}, pf, "found.mk", includes, w.ws)
	if short.Error == "" || short.Resolved != "" || short.Inside || short.Exists {
		t.Fatalf("a search cut short by the budget gives %+v, want an error and nothing resolved", short)
	}
}
