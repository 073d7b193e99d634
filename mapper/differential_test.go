package mapper

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/protocol"
	"golang.org/x/sys/unix"
)

// The differential test runs the real /usr/bin/make on every case and
// compares the directory it ends up in ($(CURDIR)) and the makefiles it
// reads ($(MAKEFILE_LIST), including an -I probe) with the mapper's facts.
// A case passes when the mapper rejects the argv, or when both agree; every
// argv make itself rejects must be rejected by the mapper too. Then make is
// run again with the mapper's canonical argv and must do the same thing.

const probeMakefile = `ifndef PROBE_DONE
PROBE_DONE := 1
-include probe-inc.mk
endif
$(info PROBE CURDIR=$(CURDIR))
$(info PROBE MFL=$(MAKEFILE_LIST))
.DEFAULT_GOAL := probe
.PHONY: probe all t1 t2
probe all t1 t2: ; @:
`

// diffWorld is a temporary tree: <root>/ws is the workspace (user "ws"),
// <root>/outside is not.
type diffWorld struct {
	root, ws string
	// caller is who the mapper resolves as, cred who make runs as (nil:
	// this process).
	caller Caller
	cred   *syscall.Credential
}

func newDiffWorld(t *testing.T) *diffWorld {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := &diffWorld{root: root, ws: filepath.Join(root, "ws"), caller: Caller{Name: "ws", UID: os.Getuid(), GID: os.Getgid()}}
	files := map[string]string{
		"ws/Makefile":              probeMakefile,
		"ws/other.mk":              probeMakefile,
		"ws/extra.mk":              "# read through MAKEFILES\n",
		"ws/a/Makefile":            probeMakefile,
		"ws/a/b/Makefile":          probeMakefile,
		"ws/a/b/c/other.mk":        probeMakefile,
		"ws/sub/makefile":          probeMakefile,
		"ws/sub/Makefile":          probeMakefile,
		"ws/gnu/GNUmakefile":       probeMakefile,
		"ws/gnu/Makefile":          probeMakefile,
		"ws/empty/.keep":           "",
		"ws/inc/probe-inc.mk":      "# probe include (ws/inc)\n",
		"ws/a/inc/probe-inc.mk":    "# probe include (ws/a/inc)\n",
		"ws/inc2/.keep":            "",
		"ws/inc/extra2.mk":         "# MAKEFILES entry found on the include path\n",
		"outside/Makefile":         probeMakefile,
		"outside/inc/probe-inc.mk": "# probe include (outside)\n",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"ws/link-a":     "a",
		"ws/link-abs":   filepath.Join(w.ws, "a/b"),
		"ws/up":         "..",
		"ws/a/b/uplink": "../..",
		"ws/link-out":   "../outside",
		"ws/loop1":      "loop2",
		"ws/loop2":      "loop1",
		"ws/dangling":   "nonexist",
		"ws/mk-link":    "other.mk",
		"ws/a/mk-up":    "../other.mk",
		"ws/etc-link":   "/etc",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *diffWorld) mapper(t *testing.T) *Mapper {
	t.Helper()
	m, err := New(config.Build{WorkspaceRoot: w.root, PathMapping: config.PathMapping{HostTemplate: "{workspace_root}/{user}"}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type makeRun struct {
	code   int
	curdir string
	mfl    []string // resolved by the kernel, sorted
	usage  bool     // make rejected its command line
	out    string
}

// realPath asks the kernel (open O_PATH + /proc/self/fd) where a path
// leads, independent of the mapper's own resolver.
func realPath(p string) (string, bool) {
	fd, err := syscall.Open(p, unix.O_PATH|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer syscall.Close(fd)
	r, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	return r, err == nil
}

func runMake(t *testing.T, dir string, args []string, env map[string]string, cred *syscall.Credential) makeRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/make", args...)
	cmd.Dir = dir
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r := makeRun{out: out.String()}
	if ctx.Err() != nil {
		t.Fatalf("make %q hung: %v", args, ctx.Err())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run make: %v", err)
	}
	r.usage = strings.Contains(r.out, "Usage: make [options]") && r.code == 2
	var mfl string
	for _, line := range strings.Split(r.out, "\n") {
		if s, ok := strings.CutPrefix(line, "PROBE CURDIR="); ok && r.curdir == "" {
			r.curdir = s
		}
		if s, ok := strings.CutPrefix(line, "PROBE MFL="); ok {
			mfl = s
		}
	}
	for _, e := range strings.Fields(mfl) {
		if !filepath.IsAbs(e) {
			e = r.curdir + "/" + e
		}
		if rp, ok := realPath(e); ok {
			r.mfl = append(r.mfl, rp)
		} else {
			r.mfl = append(r.mfl, "UNRESOLVABLE:"+e)
		}
	}
	sort.Strings(r.mfl)
	return r
}

// expectedMFL is the list of makefiles the facts say make reads.
func expectedMFL(mf *MakeFacts) ([]string, bool) {
	var out []string
	complete := true
	for _, pf := range mf.OtherFiles {
		if pf.Option == "MAKEFILES" && pf.Exists {
			out = append(out, pf.Resolved)
		}
	}
	if len(mf.Makefiles) > 0 {
		for _, pf := range mf.Makefiles {
			if !pf.Exists {
				complete = false
			}
			out = append(out, pf.Resolved)
		}
	} else if mf.DefaultMakefile != nil {
		out = append(out, mf.DefaultMakefile.Resolved)
	}
	for _, inc := range mf.Includes {
		// -I inside a MAKEFLAGS=... word reaches only sub-makes: make
		// decodes that value again after reading the makefiles.
		if !inc.IsDir || strings.HasPrefix(inc.Source, "argv:") {
			continue
		}
		if st, err := os.Stat(filepath.Join(inc.Resolved, "probe-inc.mk")); err == nil && st.Mode().IsRegular() {
			rp, _ := realPath(filepath.Join(inc.Resolved, "probe-inc.mk"))
			out = append(out, rp)
			break
		}
	}
	sort.Strings(out)
	return out, complete
}

type diffStats struct{ cases, rejected, agreed, makeFailedToo int }

// check compares one case; hostDir is where make runs (the host side of
// the request's cwd), hostArgs what make is given for args (the same unless
// the case has container paths).
func (w *diffWorld) check(t *testing.T, m *Mapper, st *diffStats, cwd, hostDir string, args, hostArgs []string, env map[string]string) {
	t.Helper()
	st.cases++
	f, err := m.Map(context.Background(), w.caller,
		protocol.Request{Command: "make", Args: args, Cwd: cwd, Env: env})
	if err != nil {
		t.Fatalf("Map(%q): %v", args, err)
	}
	mf := f.Make
	orig := runMake(t, hostDir, hostArgs, env, w.cred)
	if mf.ParseError != "" {
		st.rejected++
		if orig.code != 0 {
			st.makeFailedToo++
		}
		if !orig.usage {
			t.Logf("stricter than make: %q (make exit %d): %s", args, orig.code, mf.ParseError)
		}
		if len(mf.Argv) != 0 {
			t.Errorf("%q: ParseError %q but Argv %q", args, mf.ParseError, mf.Argv)
		}
		return
	}
	fail := func(format string, a ...any) {
		t.Errorf("DISAGREEMENT make %q in %s (env %v): %s\nmake output:\n%s", args, hostDir, env, fmt.Sprintf(format, a...), orig.out)
	}
	if orig.usage {
		fail("make rejects this command line, the mapper accepted it (argv %q)", mf.Argv)
		return
	}
	want, complete := expectedMFL(mf)
	switch {
	case orig.curdir == "" && orig.code == 0 && (slices.Contains(mf.Options, "--help") || slices.Contains(mf.Options, "--version")):
		// make printed help or its version and read nothing.
	case orig.curdir == "":
		if mf.EffectiveIsDir && complete && (len(mf.Makefiles) > 0 || mf.DefaultMakefile != nil) {
			fail("make read no makefile (exit %d), mapper says dir %s, makefiles %q", orig.code, mf.EffectiveDir, want)
			return
		}
	case orig.curdir != mf.EffectiveDir:
		fail("make ran in %s, mapper says %s", orig.curdir, mf.EffectiveDir)
		return
	case complete && strings.Join(orig.mfl, " ") != strings.Join(want, " "):
		fail("make read %q, mapper says %q", orig.mfl, want)
		return
	case !complete && orig.code == 0:
		fail("mapper says a makefile is missing but make succeeded")
		return
	}
	if len(mf.Argv) == 0 {
		// A path could not be resolved; the policy denies on the facts.
		st.agreed++
		return
	}
	canon := runMake(t, hostDir, mf.Argv, env, w.cred)
	if canon.usage || canon.code != orig.code || canon.curdir != orig.curdir || strings.Join(canon.mfl, " ") != strings.Join(orig.mfl, " ") {
		t.Errorf("DISAGREEMENT canonical argv %q for %q: exit %d/%d, curdir %q/%q, makefiles %q/%q\ncanonical output:\n%s\noriginal output:\n%s",
			mf.Argv, args, canon.code, orig.code, canon.curdir, orig.curdir, canon.mfl, orig.mfl, canon.out, orig.out)
		return
	}
	st.agreed++
}

// handCases are written out; many of them are attacks or getopt corners.
func handCases(ws string) [][]string {
	return [][]string{
		{}, {"all"}, {"-C", "a"}, {"-Ca"}, {"--directory=a"}, {"--directory", "a"}, {"--dir=a"}, {"--direc", "a"},
		{"--di", "a"}, {"-C", "a", "-C", "b"}, {"-C", "a", "-C", ".."}, {"-C", "a/b", "-C", "../.."},
		{"-C", "../.."}, {"-C", ".."}, {"--directory=/etc"}, {"-C", "/"}, {"-kC", ".."}, {"-kC.."}, {"-kCa"},
		{"--dir=.."}, {"-C", "up"}, {"-C", "link-out"}, {"-C", "link-a"}, {"-C", "link-abs"}, {"-C", "a/b/uplink"},
		{"-C", "link-a/.."}, {"-C", "link-abs/.."}, {"-C", "loop1"}, {"-C", "dangling"}, {"-C", "nonexist"},
		{"-C", "Makefile"}, {"-C", ws + "/a"}, {"-C", ws + "/a", "-C", "b"}, {"-C", "a", "-C", ws + "/sub"},
		{"-f", "/etc/passwd"}, {"-f", "other.mk"}, {"-fother.mk"}, {"--file=other.mk"}, {"--makefile", "other.mk"},
		{"--mak=other.mk"}, {"--fi", "other.mk"}, {"-f", "mk-link"}, {"-C", "a", "-f", "mk-up"}, {"-C", "a", "-f", "Makefile"},
		{"-C", "a", "-f", "../other.mk"}, {"-f", "missing.mk"}, {"-f", "other.mk", "-f", "Makefile"},
		{"-f", "link-out/Makefile"}, {"-C", "link-out", "-f", "../ws/Makefile"},
		{"-I", "inc"}, {"-Iinc"}, {"--include-dir=inc"}, {"--inc", "a/inc"}, {"-I", "link-a/inc"}, {"-I", "link-out/inc"},
		{"-I", "inc2", "-I", "inc"}, {"-C", "a", "-I", "inc"}, {"-C", "a", "-I", "../inc"}, {"-I", "nonexist", "-I", "a/inc"},
		{"all", "-C", "a"}, {"t1", "-f", "other.mk", "t2"}, {"--", "-C", "a"}, {"--", "V=1", "all"}, {"-C", "a", "--", "-C", "b"},
		{"-j"}, {"-j", "4"}, {"-j4"}, {"-sj4"}, {"-sj", "4"}, {"-j", "x"}, {"-j", ""}, {"-j0"}, {"-jk"}, {"--jobs", "3"}, {"--jobs=3"},
		{"-l"}, {"-l", "2"}, {"-l2.5"}, {"-lk"}, {"-O"}, {"-Oline"}, {"-O", "line"}, {"-Ox"}, {"--output-sync=recurse"},
		{"--debug"}, {"--debug=n"}, {"--debug=q"}, {"--debug=,"}, {"--debug="}, {"-d", "-C", "a"},
		{"--d"}, {"--no-"}, {"--ass=x"}, {"--a"}, {"--foo"}, {"-X"}, {"-k-"}, {"--=x"}, {"---"}, {"--trace=1"}, {"--quiet=1"},
		{"--file"}, {"-C"}, {"-f"}, {"--max"}, {"--jobserver-auth=3,4"}, {"--sync-mutex=x"}, {"--jobserver-fds=3,4"},
		{"V=1"}, {"V:=1"}, {"V::=1"}, {"V:::=1"}, {"V+=1"}, {"V?=1"}, {"V = 1"}, {"a b=c"}, {"a#b=c"}, {"=x"}, {"$(X)=1"},
		{"-", "all"}, {"-w", "-C", "a"}, {"--no-print-directory", "-C", "a"}, {"-s", "-C", "a"}, {"-C", ""}, {"-f", ""},
		{"-C", "~"}, {"-f", "-"}, {"-k", "-S", "-i", "-e", "-L", "-r", "-R", "-n", "-B", "-t"}, {"--recon", "--dry"},
		{"--no-silent", "--silent", "--trace", "--warn-undefined-variables", "--check-symlink-times"},
		{"-C", "./a"}, {"-C", ".//a"}, {"-C", "a/"}, {"-C", "a//b/"}, {"-C", "./"}, {"-C", "."}, {"-C", "gnu"}, {"-C", "sub"},
		{"-C", "empty"}, {"-C", "a/b/c"}, {"-C", "a/b/c", "-f", "other.mk"}, {"-Ca", "-Cb", "-Cc", "-f", "other.mk"},
		{"-eval=x"}, {"--eval", "X=1"}, {"-E", "X=1"}, {"-W", "x"}, {"-o", "x"}, {"--what-if=x", "--assume-old=y", "--new-file", "z"},
		{"-bm", "-C", "a"}, {"-hC", "a"}, {"MAKEFILES=" + ws + "/extra.mk"}, {"MAKEFILES=extra.mk"}, {"MAKEFLAGS=k"},
		{"MAKEFLAGS=-I inc"}, {"GNUMAKEFLAGS=-C a"},
		{"-f", "Makefile/"}, {"-f", "other.mk/."}, {"-f", "mk-link/"}, {"-I", "inc/"}, {"-I", "inc/."}, {"-C", "a/."}, {"-C", "a/b/.."},
		{"-C", "Makefile/"}, {"-C", "a/Makefile/.."}, {"-f", "a/../other.mk"}, {"-f", "link-a/../other.mk"}, {"-f", "nonexist/../Makefile"},
	}
}

type envCase struct {
	env  map[string]string
	args []string
}

func envCases(ws string) []envCase {
	return []envCase{
		{map[string]string{"MAKEFLAGS": "k"}, nil},
		{map[string]string{"MAKEFLAGS": "ks -j2"}, []string{"-C", "a"}},
		{map[string]string{"MAKEFLAGS": "-C a"}, nil},
		{map[string]string{"MAKEFLAGS": "-f other.mk"}, nil},
		{map[string]string{"MAKEFLAGS": "-I inc"}, nil},
		{map[string]string{"MAKEFLAGS": "-Iinc"}, []string{"-C", "a"}},
		{map[string]string{"MAKEFLAGS": " -- MAKEFILES=" + ws + "/extra.mk"}, nil},
		{map[string]string{"MAKEFLAGS": "-- MAKEFILES=extra.mk"}, nil},
		{map[string]string{"MAKEFILES": "extra.mk"}, nil},
		{map[string]string{"MAKEFILES": ws + "/extra.mk"}, []string{"-C", "a"}},
		{map[string]string{"GNUMAKEFLAGS": "-I a/inc"}, nil},
		{map[string]string{"MAKEFLAGS": "--foo"}, nil},
		{map[string]string{"MAKEFLAGS": "-I$(HOME)"}, nil},
		{map[string]string{"MAKEFLAGS": "w -- V=1 all"}, nil},
		{map[string]string{"MAKEFLAGS": "-I\\ inc"}, nil},
		{map[string]string{"MAKEFILES": "extra2.mk"}, []string{"-I", "inc"}},
		{map[string]string{"MAKEFILES": "extra2.mk", "MAKEFLAGS": "-Iinc"}, []string{"-C", "a"}},
		{map[string]string{"MAKEFILES": "extra2.mk nothere.mk extra.mk"}, []string{"-I", "a/inc", "-I", "inc"}},
	}
}

// genCases builds random combinations of the forms above.
func genCases(ws string, n int) [][]string {
	rng := rand.New(rand.NewSource(3))
	dirs := []string{".", "a", "a/b", "link-a", "link-a/b", "a/b/uplink", "up", "link-out", "../ws/a", "nonexist",
		"link-a/../a", "a/b/../../sub", ws + "/a", "dangling", "loop1", "Makefile", "gnu", "sub", "..", "b", "c", "link-abs", "link-abs/.."}
	mks := []string{"Makefile", "other.mk", "a/Makefile", "link-a/Makefile", "../Makefile", "missing.mk", ws + "/other.mk",
		"mk-link", "../other.mk", "link-out/Makefile", "../../Makefile", "c/other.mk"}
	incs := []string{"inc", "a/inc", "link-a/inc", ws + "/inc", "nonexist", "../inc", "link-out/inc", "inc2"}
	cSpell := []func(string) []string{
		func(d string) []string { return []string{"-C", d} },
		func(d string) []string { return []string{"-C" + d} },
		func(d string) []string { return []string{"--directory=" + d} },
		func(d string) []string { return []string{"--directory", d} },
		func(d string) []string { return []string{"--dir=" + d} },
		func(d string) []string { return []string{"--direc", d} },
		func(d string) []string { return []string{"-kC", d} },
		func(d string) []string { return []string{"-kC" + d} },
		func(d string) []string { return []string{"-sC", d} },
	}
	fSpell := []func(string) []string{
		func(d string) []string { return []string{"-f", d} },
		func(d string) []string { return []string{"-f" + d} },
		func(d string) []string { return []string{"--file=" + d} },
		func(d string) []string { return []string{"--makefile", d} },
		func(d string) []string { return []string{"--mak=" + d} },
		func(d string) []string { return []string{"--fi", d} },
		func(d string) []string { return []string{"-kf", d} },
	}
	iSpell := []func(string) []string{
		func(d string) []string { return []string{"-I", d} },
		func(d string) []string { return []string{"-I" + d} },
		func(d string) []string { return []string{"--include-dir=" + d} },
		func(d string) []string { return []string{"--inc", d} },
	}
	extras := [][]string{{"-k"}, {"-s"}, {"-j4"}, {"-j", "4"}, {"-j"}, {"--jobs=2"}, {"-sj4"}, {"-l", "2"}, {"-O"}, {"-Oline"},
		{"-w"}, {"--no-print-directory"}, {"-n"}, {"-B"}, {"-r"}, {"-R"}, {"-e"}, {"-i"}, {"-L"}, {"-S"}, {"--debug=n"},
		{"--dry"}, {"--qu"}, {"--no-k"}, {"-o", "x"}, {"-W", "y"}, {"--trace"}, {"-t"}, {"V=1"}, {"V:=2"}, {"W+=3"}, {"all"}, {"t1"},
		{"--"}}
	pick := func(l []string) string { return l[rng.Intn(len(l))] }
	var out [][]string
	for len(out) < n {
		var units [][]string
		for k := rng.Intn(4); k > 0; k-- {
			units = append(units, cSpell[rng.Intn(len(cSpell))](pick(dirs)))
		}
		for k := rng.Intn(3); k > 0; k-- {
			units = append(units, fSpell[rng.Intn(len(fSpell))](pick(mks)))
		}
		for k := rng.Intn(3); k > 0; k-- {
			units = append(units, iSpell[rng.Intn(len(iSpell))](pick(incs)))
		}
		for k := rng.Intn(4); k > 0; k-- {
			units = append(units, extras[rng.Intn(len(extras))])
		}
		rng.Shuffle(len(units), func(i, j int) { units[i], units[j] = units[j], units[i] })
		var args []string
		for _, u := range units {
			args = append(args, u...)
		}
		out = append(out, args)
	}
	return out
}

func TestDifferentialAgainstRealMake(t *testing.T) {
	if _, err := os.Stat("/usr/bin/make"); err != nil {
		t.Fatalf("the differential test needs /usr/bin/make: %v", err)
	}
	w := newDiffWorld(t)
	m := w.mapper(t)
	st := &diffStats{}
	t.Run("identity mapping, cwd is the workspace", func(t *testing.T) {
		for _, args := range append(handCases(w.ws), genCases(w.ws, 320)...) {
			w.check(t, m, st, w.ws, w.ws, args, args, nil)
		}
	})
	t.Run("identity mapping, cwd is a subdirectory", func(t *testing.T) {
		for _, args := range genCases(w.ws, 60) {
			w.check(t, m, st, w.ws+"/a", w.ws+"/a", args, args, nil)
		}
	})
	t.Run("environment MAKEFLAGS, GNUMAKEFLAGS and MAKEFILES", func(t *testing.T) {
		for _, c := range envCases(w.ws) {
			w.check(t, m, st, w.ws, w.ws, c.args, c.args, c.env)
		}
	})
	t.Run("container paths differ from host paths", func(t *testing.T) {
		cm, err := New(config.Build{WorkspaceRoot: w.root, PathMapping: config.PathMapping{
			ContainerTemplate: "/container/home/{user}", HostTemplate: "{workspace_root}/{user}"}})
		if err != nil {
			t.Fatal(err)
		}
		const ctr = "/container/home/ws"
		for _, args := range append(handCases(ctr), genCases(ctr, 80)...) {
			host := make([]string, len(args))
			for i, a := range args {
				host[i] = a
				// Values of assignments reach make literally.
				if strings.HasPrefix(a, "-") || !strings.Contains(a, "=") {
					host[i] = strings.ReplaceAll(a, ctr, w.ws)
				}
			}
			w.check(t, cm, st, ctr+"/a", w.ws+"/a", args, host, nil)
		}
	})
	t.Logf("differential: %d cases, %d agreed with real make, %d rejected by the mapper (make failed on %d of them too)",
		st.cases, st.agreed, st.rejected, st.makeFailedToo)
	if st.cases < 300 || st.agreed < 250 {
		t.Fatalf("too few meaningful cases: %+v", st)
	}
}
