package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/build-service/build-service/protocol"
)

// The wrapper is POSIX sh; the tests run it with dash (Debian's /bin/sh and
// the strictest common shell) and through the #! line, as `make` on PATH.
var wrapperPath, _ = filepath.Abs("../../scripts/make-wrapper.sh")

// argvCheck are arguments a shell wrapper classically mangles.
var argvCheck = []string{"", "a b", `"quoted"`, `it's`, "*", "*.c", "[ab]", "x\ny", "  lead", "trail  ", "$HOME", "$(id)", "`id`", "-C", "--", "\\", "é😀"}

// fakeTool writes an executable sh script that records its argv (NUL
// separated) into record and exits with code.
func fakeTool(t *testing.T, path, record string, code string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > '" + record + "'\nexit " + code + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func readArgv(t *testing.T, record string) []string {
	t.Helper()
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the tool did not run: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func installWrapper(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(wrapperPath)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "make")
	if err := os.WriteFile(p, src, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

type wrapperRun struct {
	code           int
	stdout, stderr string
}

// runWrapper runs argv[0] (dash or the installed wrapper) with env only. An
// exec loop keeps one pid, so the deadline's kill ends it and the test fails
// instead of hanging.
func runWrapper(t *testing.T, env []string, argv ...string) wrapperRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%q did not finish within 60 s (an exec loop?); stderr %q", argv, stderr.String())
	}
	code := exitCode(t, err)
	return wrapperRun{code, stdout.String(), stderr.String()}
}

func TestWrapperIsValidPOSIXShell(t *testing.T) {
	for _, sh := range []string{"sh", "dash"} {
		if out, err := exec.Command(sh, "-n", wrapperPath).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
}

func TestWrapperPassesEveryArgumentExactly(t *testing.T) {
	tmp := t.TempDir()
	record := filepath.Join(tmp, "argv")
	fakeCLI := filepath.Join(tmp, "clibin", "build-cli")
	fakeTool(t, fakeCLI, record, "0")
	mk := installWrapper(t, filepath.Join(tmp, "bin"))
	path := "PATH=" + filepath.Join(tmp, "bin") + ":" + filepath.Join(tmp, "clibin") + ":/usr/bin:/bin"

	t.Run("run by dash, build-cli found on PATH", func(t *testing.T) {
		r := runWrapper(t, []string{path}, append([]string{"dash", wrapperPath}, argvCheck...)...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		want := append([]string{fakeCLI, "make"}, argvCheck...)
		if got := readArgv(t, record); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("argv\n got %q\nwant %q", got, want)
		}
	})
	t.Run("run as make through its #! line, build-cli from BUILD_CLI", func(t *testing.T) {
		other := filepath.Join(tmp, "elsewhere", "build-cli")
		fakeTool(t, other, record, "0")
		r := runWrapper(t, []string{path, "BUILD_CLI=" + other}, append([]string{mk}, argvCheck...)...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		want := append([]string{other, "make"}, argvCheck...)
		if got := readArgv(t, record); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("argv\n got %q\nwant %q", got, want)
		}
	})
}

// Layout of a container for the fallback tests: the wrapper first on PATH
// (as make), build-cli, and a real make further down.
type fallbackBox struct {
	tmp, wrapper, cliRecord, makeRecord, realMake string
	path                                          string
}

func newFallbackBox(t *testing.T, cliCode string) fallbackBox {
	tmp := t.TempDir()
	b := fallbackBox{tmp: tmp, cliRecord: filepath.Join(tmp, "cli-argv"), makeRecord: filepath.Join(tmp, "make-argv")}
	b.wrapper = installWrapper(t, filepath.Join(tmp, "wrapper"))
	fakeTool(t, filepath.Join(tmp, "clibin", "build-cli"), b.cliRecord, cliCode)
	b.realMake = filepath.Join(tmp, "usr", "bin", "make")
	fakeTool(t, b.realMake, b.makeRecord, "7")
	b.path = "PATH=" + strings.Join([]string{filepath.Join(tmp, "wrapper"), filepath.Join(tmp, "clibin"), filepath.Join(tmp, "usr", "bin"), "/usr/bin", "/bin"}, ":")
	return b
}

func TestWrapperExitCodesAndFallback(t *testing.T) {
	tests := []struct {
		name         string
		cliCode      string
		fallback     bool
		wantCode     int
		wantRealMake bool
	}{
		{"a successful build exits 0", "0", false, 0, false},
		{"a failed build exits 2", "2", false, 2, false},
		{"a timeout exits 124", "124", false, 124, false},
		{"an unreachable service exits 125 without the opt-in", "125", false, 125, false},
		{"a denial exits 126", "126", false, 126, false},
		{"a start failure exits 127", "127", false, 127, false},
		{"an interrupted build exits 130", "130", false, 130, false},
		{"with the opt-in, an unreachable service runs the real make", "125", true, 7, true},
		{"with the opt-in, a denial never falls back", "126", true, 126, false},
		{"with the opt-in, a failed build never falls back", "2", true, 2, false},
		{"with the opt-in, a timeout never falls back", "124", true, 124, false},
		{"with the opt-in, a start failure never falls back", "127", true, 127, false},
		{"with the opt-in, an interrupted build never falls back", "130", true, 130, false},
		{"with the opt-in, a success runs nothing else", "0", true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFallbackBox(t, tt.cliCode)
			env := []string{b.path}
			if tt.fallback {
				env = append(env, "BUILD_SERVICE_FALLBACK=1")
			}
			r := runWrapper(t, env, append([]string{b.wrapper}, argvCheck...)...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			_, err := os.Stat(b.makeRecord)
			if ran := err == nil; ran != tt.wantRealMake {
				t.Fatalf("real make ran: %v, want %v; stderr %q", ran, tt.wantRealMake, r.stderr)
			}
			if tt.wantRealMake {
				if got := readArgv(t, b.makeRecord); strings.Join(got, "\x00") != strings.Join(append([]string{b.realMake}, argvCheck...), "\x00") {
					t.Fatalf("real make argv %q", got)
				}
				if !strings.Contains(r.stderr, "build-service unreachable; running "+b.realMake) {
					t.Fatalf("the fallback was not announced: %q", r.stderr)
				}
			}
		})
	}
}

func TestWrapperFallbackNeverRunsItself(t *testing.T) {
	t.Run("the only make on PATH is the wrapper: no loop, 125", func(t *testing.T) {
		b := newFallbackBox(t, "125")
		path := "PATH=" + filepath.Dir(b.wrapper) + ":" + filepath.Join(b.tmp, "clibin")
		r := runWrapper(t, []string{path, "BUILD_SERVICE_FALLBACK=1"}, b.wrapper, "all")
		if r.code != 125 || !strings.Contains(r.stderr, "no other make on PATH") {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
	})
	t.Run("a symlink to the wrapper and a copy of it are skipped", func(t *testing.T) {
		b := newFallbackBox(t, "125")
		link := filepath.Join(b.tmp, "linkdir", "make")
		os.MkdirAll(filepath.Dir(link), 0o755)
		if err := os.Symlink(b.wrapper, link); err != nil {
			t.Fatal(err)
		}
		cp := installWrapper(t, filepath.Join(b.tmp, "copydir"))
		path := "PATH=" + strings.Join([]string{filepath.Dir(b.wrapper), filepath.Dir(link), filepath.Dir(cp),
			filepath.Join(b.tmp, "clibin"), filepath.Dir(b.realMake)}, ":")
		r := runWrapper(t, []string{path, "BUILD_SERVICE_FALLBACK=1"}, b.wrapper, "all")
		if r.code != 7 {
			t.Fatalf("exit %d, want the real make's 7; stderr %q", r.code, r.stderr)
		}
		if got := readArgv(t, b.makeRecord); got[0] != b.realMake {
			t.Fatalf("ran %q", got[0])
		}
		// build-cli ran exactly once: no wrapper ran a second time.
		if n := strings.Count(r.stderr, "build-service unreachable; running"); n != 1 {
			t.Fatalf("fell back %d times: %q", n, r.stderr)
		}
	})
	t.Run("a wrapper that hides its marker is stopped by the pid check", func(t *testing.T) {
		b := newFallbackBox(t, "125")
		src, _ := os.ReadFile(wrapperPath)
		disguised := strings.Replace(string(src), "# build-service-make-wrapper", "# some other make", 1)
		dir := filepath.Join(b.tmp, "disguised")
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "make"), []byte(disguised), 0o755); err != nil {
			t.Fatal(err)
		}
		path := "PATH=" + strings.Join([]string{filepath.Dir(b.wrapper), dir, filepath.Join(b.tmp, "clibin"), filepath.Dir(b.realMake)}, ":")
		r := runWrapper(t, []string{path, "BUILD_SERVICE_FALLBACK=1"}, b.wrapper, "all")
		if r.code != 125 || !strings.Contains(r.stderr, "is a build-service wrapper; not running it again") {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
		if _, err := os.Stat(b.makeRecord); err == nil {
			t.Fatalf("the real make ran after the loop was detected")
		}
	})
	t.Run("a missing build-cli is unreachable, and falls back only with the opt-in", func(t *testing.T) {
		b := newFallbackBox(t, "0")
		os.Remove(filepath.Join(b.tmp, "clibin", "build-cli"))
		r := runWrapper(t, []string{b.path}, b.wrapper, "all")
		if r.code != 125 || !strings.Contains(r.stderr, "build-cli not found") {
			t.Fatalf("without opt-in: exit %d stderr %q", r.code, r.stderr)
		}
		r = runWrapper(t, []string{b.path, "BUILD_SERVICE_FALLBACK=1"}, b.wrapper, "all")
		if r.code != 7 {
			t.Fatalf("with opt-in: exit %d stderr %q", r.code, r.stderr)
		}
	})
}

// The real build-cli behind the wrapper, with no service: the user reads
// that the service is unreachable and gets 125.
func TestWrapperWithRealBuildCLIReportsUnreachable(t *testing.T) {
	tmp := t.TempDir()
	mk := installWrapper(t, filepath.Join(tmp, "bin"))
	sock := filepath.Join(tmp, "none.sock")
	r := runWrapper(t, []string{"PATH=/usr/bin:/bin", "BUILD_CLI=" + binary, "BUILD_SERVICE_SOCKET=" + sock}, mk, "-j4", "all")
	want := "build-cli: build-service unreachable at " + sock + ": connect: no such file or directory\n"
	if r.code != 125 || r.stderr != want {
		t.Fatalf("exit %d stderr %q, want 125 %q", r.code, r.stderr, want)
	}
}

// The whole container side: make (the wrapper) -> the real build-cli -> the
// request the daemon decodes holds every argument exactly.
func TestWrapperAndBuildCLIDeliverArgvToTheDaemon(t *testing.T) {
	got := make(chan *protocol.Request, 1)
	d := startDaemon(t, func(c net.Conn, _ *bufio.Reader, req *protocol.Request) {
		got <- req
		send(t, c, protocol.ExitEvent(0, false))
	})
	mk := installWrapper(t, filepath.Join(t.TempDir(), "bin"))
	r := runWrapper(t, []string{"PATH=/usr/bin:/bin", "BUILD_CLI=" + binary, "BUILD_SERVICE_SOCKET=" + d.path}, append([]string{mk}, argvCheck...)...)
	if r.code != 0 {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	req := <-got
	if req.Command != "make" || strings.Join(req.Args, "\x00") != strings.Join(argvCheck, "\x00") {
		t.Fatalf("daemon got %q %q, want make %q", req.Command, req.Args, argvCheck)
	}
}
