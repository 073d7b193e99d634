package mapper

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/protocol"
)

// attackWorld is <root>/ws (the workspace of user "ws", identity mapping),
// <root>/ws2 (a sibling whose name has ws as a string prefix) and
// <root>/outside.
type attackWorld struct {
	root, ws string
	m        *Mapper
}

func newAttackWorld(t *testing.T) *attackWorld {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &attackWorld{root: root, ws: filepath.Join(root, "ws")}
	for _, d := range []string{"ws/a/b", "ws2", "outside"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"ws/Makefile", "ws/a/Makefile", "outside/Makefile", "ws2/Makefile"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("all: ; @:\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"ws/link-out": "../outside", "ws/mk-out": "../outside/Makefile", "ws/loop1": "loop2", "ws/loop2": "loop1",
		"ws/link-a": "a", "ws/etc": "/etc",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(w.ws, "fifo.mk"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.m, err = New(config.Build{WorkspaceRoot: root, PathMapping: config.PathMapping{HostTemplate: "{workspace_root}/{user}"}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *attackWorld) mapReq(t *testing.T, cwd string, args []string, env map[string]string) *Facts {
	t.Helper()
	type res struct {
		f   *Facts
		err error
	}
	done := make(chan res, 1)
	go func() {
		f, err := w.m.Map(context.Background(), Caller{Name: "ws", UID: os.Getuid(), GID: os.Getgid()},
			protocol.Request{Command: "make", Args: args, Cwd: strings.ReplaceAll(cwd, "$WS", w.ws), Env: env})
		done <- res{f, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Map: %v", r.err)
		}
		return r.f
	case <-time.After(15 * time.Second):
		t.Fatalf("Map(%q) did not return within 15 s", args)
		return nil
	}
}

// sub replaces $WS and $ROOT in an expectation.
func (w *attackWorld) sub(s string) string {
	return strings.NewReplacer("$WS", w.ws, "$ROOT", w.root).Replace(s)
}

func TestAttackList(t *testing.T) {
	w := newAttackWorld(t)
	type tc struct {
		name  string
		cwd   string
		args  []string
		env   map[string]string
		check func(t *testing.T, f *Facts, mf *MakeFacts)
	}
	wantPath := func(got PathFact, resolved string, inside bool) func(t *testing.T) {
		return func(t *testing.T) {
			t.Helper()
			if got.Resolved != w.sub(resolved) || got.Inside != inside {
				t.Errorf("%s %q: resolved %q inside %v, want %q inside %v (error %q)", got.Option, got.Arg, got.Resolved, got.Inside, w.sub(resolved), inside, got.Error)
			}
		}
	}
	wantParseError := func(msg string) func(t *testing.T, f *Facts, mf *MakeFacts) {
		return func(t *testing.T, f *Facts, mf *MakeFacts) {
			if mf.ParseError != msg {
				t.Errorf("ParseError %q\n want %q", mf.ParseError, msg)
			}
			if len(mf.Argv) != 0 {
				t.Errorf("Argv %q, want none with a parse error", mf.Argv)
			}
		}
	}
	cases := []tc{
		{name: "-C ../.. leaves the workspace", cwd: "$WS/a", args: []string{"-C", "../.."},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				wantPath(mf.Directories[0], "$ROOT", false)(t)
				if mf.EffectiveDir != w.root || mf.EffectiveInside {
					t.Errorf("effective %q inside %v", mf.EffectiveDir, mf.EffectiveInside)
				}
			}},
		{name: "--directory=/etc is outside every mapping", cwd: "$WS", args: []string{"--directory=/etc"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				d := mf.Directories[0]
				if d.Mapped || d.Error != "outside every mapped path" || d.Resolved != "" || mf.EffectiveDir != "" || len(mf.Argv) != 0 {
					t.Errorf("got %+v, effective %q, argv %q", d, mf.EffectiveDir, mf.Argv)
				}
			}},
		{name: "-f /etc/passwd is outside every mapping", cwd: "$WS", args: []string{"-f", "/etc/passwd"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if pf := mf.Makefiles[0]; pf.Mapped || pf.Inside || pf.Error != "outside every mapped path" {
					t.Errorf("got %+v", pf)
				}
			}},
		{name: "-kC.. is keep-going plus -C ..", cwd: "$WS", args: []string{"-kC.."},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				wantPath(mf.Directories[0], "$ROOT", false)(t)
				if !slices.Equal(mf.Options, []string{"--keep-going", "--directory"}) {
					t.Errorf("options %q", mf.Options)
				}
			}},
		{name: "--dir=.. is an abbreviation of --directory", cwd: "$WS", args: []string{"--dir=.."},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) { wantPath(mf.Directories[0], "$ROOT", false)(t) }},
		{name: "-C after a target still counts", cwd: "$WS", args: []string{"all", "-C", ".."},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				wantPath(mf.Directories[0], "$ROOT", false)(t)
				if !slices.Equal(mf.Targets, []string{"all"}) {
					t.Errorf("targets %q", mf.Targets)
				}
			}},
		{name: "-C after -- is a target, not an option", cwd: "$WS", args: []string{"--", "-C", ".."},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if len(mf.Directories) != 0 || !slices.Equal(mf.Targets, []string{"-C", ".."}) || mf.EffectiveDir != w.ws {
					t.Errorf("dirs %+v targets %q effective %q", mf.Directories, mf.Targets, mf.EffectiveDir)
				}
				if want := []string{"--", "-C", ".."}; !slices.Equal(mf.Argv, want) {
					t.Errorf("argv %q, want %q", mf.Argv, want)
				}
			}},
		{name: "-C through a symlink that escapes the workspace", cwd: "$WS", args: []string{"-C", "link-out"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) { wantPath(mf.Directories[0], "$ROOT/outside", false)(t) }},
		{name: "-f through a symlink that escapes the workspace", cwd: "$WS", args: []string{"-f", "mk-out"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				wantPath(mf.Makefiles[0], "$ROOT/outside/Makefile", false)(t)
			}},
		{name: "-f through a symlink to /etc", cwd: "$WS", args: []string{"-f", "etc/passwd"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) { wantPath(mf.Makefiles[0], "/etc/passwd", false)(t) }},
		{name: "the workspace2 sibling is not inside the workspace (component test, not string prefix)", cwd: "$WS", args: []string{"-C", "../ws2"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) { wantPath(mf.Directories[0], "$ROOT/ws2", false)(t) }},
		{name: "MAKEFLAGS in the environment carries -- MAKEFILES=/etc/x", cwd: "$WS", env: map[string]string{"MAKEFLAGS": "-- MAKEFILES=/etc/x"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				pf := mf.OtherFiles[0]
				if pf.Option != "MAKEFILES" || pf.Source != "MAKEFLAGS" || pf.Resolved != "/etc/x" || pf.Inside || pf.Exists {
					t.Errorf("got %+v", pf)
				}
				if a := mf.Assignments[0]; a.Name != "MAKEFILES" || a.Source != "MAKEFLAGS" || a.Value != "/etc/x" {
					t.Errorf("assignment %+v", a)
				}
			}},
		{name: "MAKEFILES=/etc/passwd as a command-line variable", cwd: "$WS", args: []string{"MAKEFILES=/etc/passwd"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				pf := mf.OtherFiles[0]
				if pf.Option != "MAKEFILES" || pf.Source != "argv" || pf.Resolved != "/etc/passwd" || pf.Inside || !pf.Exists {
					t.Errorf("got %+v", pf)
				}
				if a := mf.Assignments[0]; a.Name != "MAKEFILES" || a.Op != "=" || a.Source != "argv" {
					t.Errorf("assignment %+v", a)
				}
			}},
		{name: "MAKEFILES in the environment", cwd: "$WS", env: map[string]string{"MAKEFILES": "/etc/passwd ../outside/Makefile"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if len(mf.OtherFiles) != 2 || mf.OtherFiles[1].Resolved != w.root+"/outside/Makefile" || mf.OtherFiles[1].Source != "MAKEFILES" {
					t.Errorf("got %+v", mf.OtherFiles)
				}
			}},
		{name: "a relative MAKEFILES entry make finds in /usr/include", cwd: "$WS", env: map[string]string{"MAKEFILES": "limits.h"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if pf := mf.OtherFiles[0]; pf.Resolved != "/usr/include/limits.h" || pf.Inside || !pf.Exists {
					t.Errorf("got %+v", pf)
				}
			}},
		{name: "--eval=include /etc/x is visible as eval text", cwd: "$WS", args: []string{"--eval=include /etc/x"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if !slices.Equal(mf.Eval, []string{"include /etc/x"}) || !slices.Contains(mf.Argv, "--eval=include /etc/x") {
					t.Errorf("eval %q argv %q", mf.Eval, mf.Argv)
				}
			}},
		{name: "--eval from MAKEFLAGS is visible too", cwd: "$WS", env: map[string]string{"MAKEFLAGS": "--eval=include\\ /etc/x"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if !slices.Equal(mf.Eval, []string{"include /etc/x"}) {
					t.Errorf("eval %q", mf.Eval)
				}
			}},
		{name: "-C in MAKEFLAGS is ignored, as make ignores it", cwd: "$WS", env: map[string]string{"MAKEFLAGS": "-C /etc"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if len(mf.Directories) != 0 || mf.EffectiveDir != w.ws || slices.Contains(mf.Options, "--directory") {
					t.Errorf("dirs %+v effective %q options %q", mf.Directories, mf.EffectiveDir, mf.Options)
				}
			}},
		{name: "-I in MAKEFLAGS is honoured and taken literally", cwd: "$WS", env: map[string]string{"MAKEFLAGS": "-I/etc"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if pf := mf.Includes[0]; pf.Source != "MAKEFLAGS" || pf.Resolved != "/etc" || pf.Inside {
					t.Errorf("got %+v", pf)
				}
			}},
		{name: "!= and SHELL/.SHELLFLAGS/MAKE assignments are visible", cwd: "$WS", args: []string{"X!=id", "SHELL=/tmp/sh", ".SHELLFLAGS=-c", "MAKE=/tmp/m"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				var got []string
				for _, a := range mf.Assignments {
					got = append(got, a.Name+" "+a.Op+" "+a.Value)
				}
				want := []string{"X != id", "SHELL = /tmp/sh", ".SHELLFLAGS = -c", "MAKE = /tmp/m"}
				if !slices.Equal(got, want) {
					t.Errorf("assignments %q, want %q", got, want)
				}
			}},
		{name: "a FIFO named as -f does not hang the mapper", cwd: "$WS", args: []string{"-f", "fifo.mk"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				pf := mf.Makefiles[0]
				if !pf.Exists || pf.IsDir || !pf.Inside || pf.Resolved != w.ws+"/fifo.mk" {
					t.Errorf("got %+v", pf)
				}
			}},
		{name: "a symlink loop is not resolvable", cwd: "$WS", args: []string{"-C", "loop1"},
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if d := mf.Directories[0]; d.Error != "too many levels of symbolic links" || d.Resolved != "" || len(mf.Argv) != 0 {
					t.Errorf("got %+v argv %q", d, mf.Argv)
				}
			}},
		{name: "a cwd outside every mapping", cwd: "/etc", args: nil,
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if f.Cwd.Mapped || f.Cwd.Inside || f.Cwd.Host != "" || mf.EffectiveDir != "" {
					t.Errorf("cwd %+v effective %q", f.Cwd, mf.EffectiveDir)
				}
			}},
		{name: "a cwd through a symlink that escapes", cwd: "$WS/link-out", args: nil,
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if f.Cwd.Resolved != w.root+"/outside" || f.Cwd.Inside || !f.Cwd.IsDir {
					t.Errorf("cwd %+v", f.Cwd)
				}
			}},
		{name: "a relative cwd is refused", cwd: "ws", args: nil,
			check: func(t *testing.T, f *Facts, mf *MakeFacts) {
				if f.Cwd.Error != "the working directory is not an absolute path" || f.Cwd.Mapped {
					t.Errorf("cwd %+v", f.Cwd)
				}
			}},
		{name: "a NUL byte in an argument", cwd: "$WS", args: []string{"-C", "a\x00b"},
			check: wantParseError(`argument "a\x00b" contains a NUL byte, which build-service does not pass to make`)},
		{name: "a newline in an argument", cwd: "$WS", args: []string{"all\nrm"},
			check: wantParseError(`argument "all\nrm" contains a newline, which build-service does not pass to make`)},
		{name: "an unknown long option", cwd: "$WS", args: []string{"--foo"},
			check: wantParseError(`make option "--foo" is not recognised; see make --help`)},
		{name: "an ambiguous abbreviation", cwd: "$WS", args: []string{"--d=.."},
			check: wantParseError(`make option "--d" is ambiguous (--directory, --debug, --dry-run); spell it out`)},
		{name: "an unknown short option inside a cluster", cwd: "$WS", args: []string{"-kX"},
			check: wantParseError(`make option "-X" (in "-kX") is not recognised; see make --help`)},
		{name: "-C without its directory", cwd: "$WS", args: []string{"all", "-C"},
			check: wantParseError(`make option "-C" needs an argument (a directory)`)},
		{name: "a tilde path make would expand on the host", cwd: "$WS", args: []string{"-C", "~bob"},
			check: wantParseError(`-C/--directory "~bob" starts with "~", which make would expand on the host; write the path out`)},
		{name: "a computed variable name", cwd: "$WS", args: []string{"$(shell id)=1"},
			check: wantParseError(`variable name "$(shell id)" in "$(shell id)=1" contains "$", which make would expand; use a literal name`)},
		{name: "make's internal jobserver option", cwd: "$WS", args: []string{"--jobserver-auth=3,4"},
			check: wantParseError(`make option --jobserver-auth is make's internal plumbing and is not accepted`)},
		{name: "MAKEFLAGS with a variable reference", cwd: "$WS", env: map[string]string{"MAKEFLAGS": "-I$(HOME)"},
			check: wantParseError(`MAKEFLAGS refers to a make variable ($), which build-service cannot check; give it a literal value`)},
		{name: "an unknown option in MAKEFLAGS", cwd: "$WS", env: map[string]string{"MAKEFLAGS": "k --foo"},
			check: wantParseError(`in MAKEFLAGS: make option "--foo" is not recognised; see make --help`)},
		{name: "MAKEFLAGS!= on the command line", cwd: "$WS", args: []string{"MAKEFLAGS!=echo -k"},
			check: wantParseError(`MAKEFLAGS!= runs a shell command whose output build-service cannot check; give MAKEFLAGS a literal value`)},
		{name: "-f - would read standard input", cwd: "$WS", args: []string{"-f", "-"},
			check: wantParseError(`-f - (makefile from standard input) is not supported: the build's standard input is empty`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := w.mapReq(t, c.cwd, c.args, c.env)
			if f.Make == nil {
				t.Fatal("no make facts")
			}
			c.check(t, f, f.Make)
		})
	}
}

func TestCanonicalArgv(t *testing.T) {
	w := newAttackWorld(t)
	cases := []struct {
		name string
		cwd  string
		args []string
		want string // space-joined
	}{
		{"nothing given", "$WS", nil, "--"},
		{"-C is collapsed into one absolute real directory", "$WS", []string{"-C", "link-a", "-C", "b"}, "--directory=$WS/a/b --"},
		{"a relative -C after an absolute one", "$WS", []string{"-C", "$WS/a", "-Cb"}, "--directory=$WS/a/b --"},
		{"short clusters become long options in order", "$WS", []string{"-kSsj4", "all"}, "--keep-going --no-keep-going --silent --jobs=4 -- all"},
		{"-j takes a following number", "$WS", []string{"-j", "8", "all"}, "--jobs=8 -- all"},
		{"-j without a number", "$WS", []string{"-j", "all"}, "--jobs -- all"},
		{"-f and -I are real paths against the final directory", "$WS", []string{"-C", "a", "-f", "Makefile", "-I", "b"},
			"--directory=$WS/a --file=$WS/a/Makefile --include-dir=$WS/a/b --"},
		{"a relative -o stays a name", "$WS", []string{"-o", "x.o", "-W", "$WS/y"}, "--old-file=x.o --what-if=$WS/y --"},
		{"assignments and targets go after --", "$WS", []string{"all", "V=1", "-k", "clean", "W+=2"}, "--keep-going -- all V=1 clean W+=2"},
		{"-b and -m are dropped, -d kept", "$WS", []string{"-bmd"}, "-d --"},
		{"optional arguments take their defaults", "$WS", []string{"-O", "--debug"}, "--output-sync=target --debug=basic --"},
		{"a missing -C is handed over unresolved so make fails on it", "$WS", []string{"-C", "nope/.."}, "--directory=$WS/nope/.. --"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := make([]string, len(c.args))
			for i, a := range c.args {
				args[i] = w.sub(a)
			}
			f := w.mapReq(t, c.cwd, args, nil)
			if got, want := strings.Join(f.Make.Argv, " "), w.sub(c.want); got != want {
				t.Errorf("argv %q\n want %q (parse error %q)", got, want, f.Make.ParseError)
			}
		})
	}
}

func TestTemplatesAndMapping(t *testing.T) {
	t.Run("bad templates are refused by New", func(t *testing.T) {
		for _, c := range []struct {
			pm   config.PathMapping
			want string
		}{
			{config.PathMapping{HostTemplate: "/srv/ws"}, `host_template "/srv/ws" must contain {user}`},
			{config.PathMapping{HostTemplate: "srv/{user}"}, `want a clean absolute path`},
			{config.PathMapping{HostTemplate: "/srv/{user}/../x"}, `want a clean absolute path`},
			{config.PathMapping{HostTemplate: "/srv/{home}/{user}"}, `only {user} and {workspace_root} may be used`},
			{config.PathMapping{HostTemplate: "/srv/{user}", ContainerTemplate: "/home/{user}/"}, `want a clean absolute path`},
		} {
			_, err := New(config.Build{WorkspaceRoot: "/srv", PathMapping: c.pm})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New(%+v) = %v, want %q", c.pm, err, c.want)
			}
		}
	})
	m, err := New(config.Build{WorkspaceRoot: "/srv/ws", PathMapping: config.PathMapping{
		ContainerTemplate: "/home/{user}", HostTemplate: "{workspace_root}/{user}/workspace"},
		PathMappings: []config.PathMapping{
			{ContainerTemplate: "/home/{user}/cache", HostTemplate: "/var/cache/{user}", Mode: "ro"},
			{ContainerTemplate: "/opt/sdk", HostTemplate: "/opt/sdk-1.2", Mode: "ro"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := m.forUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"/home/alice", "/srv/ws/alice/workspace"},
		{"/home/alice/proj/x.c", "/srv/ws/alice/workspace/proj/x.c"},
		{"//home/./alice//proj", "/srv/ws/alice/workspace/proj"},
		{"/home/alice/cache/obj", "/var/cache/alice/obj"}, // longest container prefix wins
		{"/home/alice/cachex", "/srv/ws/alice/workspace/cachex"},
		{"/home/alice/../bob", "/srv/ws/alice/workspace/../bob"}, // ".." is left to the kernel
		{"/opt/sdk/include", "/opt/sdk-1.2/include"},
		{"/home/alice2/proj", ""}, // not under /home/alice
		{"/home", ""},
		{"/opt/sdkx", ""},
	} {
		got, ok := toHost(ms, c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("toHost(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	if _, err := m.forUser("../root"); err == nil {
		t.Error("a user name with a slash was put into a path")
	}
}

func TestWithinIsAComponentTest(t *testing.T) {
	for _, c := range []struct {
		p, root string
		want    bool
	}{
		{"/ws/alice", "/ws/alice", true}, {"/ws/alice/x", "/ws/alice", true}, {"/ws/alice2", "/ws/alice", false},
		{"/ws", "/ws/alice", false}, {"/anything", "/", true}, {"", "/ws", false}, {"/ws", "", false},
	} {
		if got := within(c.p, c.root); got != c.want {
			t.Errorf("within(%q, %q) = %v", c.p, c.root, got)
		}
	}
}

func TestWorkspaceStrictModes(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o755)
	uid := os.Getuid()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("a private workspace is safe", func(t *testing.T) {
		if ok, why := checkStrict(mk("ok", 0o755), uid); !ok {
			t.Errorf("unsafe: %s", why)
		}
	})
	t.Run("a group-writable workspace is not", func(t *testing.T) {
		p := mk("gw", 0o775)
		ok, why := checkStrict(p, uid)
		if want := p + " is writable by group or others (mode 0775)"; ok || why != want {
			t.Errorf("got %v %q, want %q", ok, why, want)
		}
	})
	t.Run("a world-writable ancestor is not", func(t *testing.T) {
		mk("ww", 0o777)
		p := mk("ww/ws", 0o755)
		if ok, why := checkStrict(p, uid); ok || !strings.Contains(why, "ww is writable by group or others") {
			t.Errorf("got %v %q", ok, why)
		}
	})
	t.Run("a root-owned sticky ancestor like /tmp is fine", func(t *testing.T) {
		testenv.RequireRoot(t) // the exception is for root-owned directories only
		mk("sticky", 0o777|os.ModeSticky)
		p := mk("sticky/ws", 0o755)
		if ok, why := checkStrict(p, uid); !ok {
			t.Errorf("unsafe: %s", why)
		}
	})
}

func TestCommandsOtherThanMakeHaveNoMakeFacts(t *testing.T) {
	w := newAttackWorld(t)
	f, err := w.m.Map(context.Background(), Caller{Name: "ws", UID: os.Getuid(), GID: os.Getgid()},
		protocol.Request{Command: "cc", Args: []string{"-C", "/etc"}, Cwd: w.ws + "/a"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Make != nil || !f.Cwd.Inside || f.Cwd.Resolved != w.ws+"/a" {
		t.Errorf("got make %+v cwd %+v", f.Make, f.Cwd)
	}
	if !IsMake("make") || !IsMake("gmake") || IsMake("/usr/bin/make") || IsMake("cc") {
		t.Error("IsMake")
	}
}

func TestMapRefusesUserNamesThatAreNotPathComponents(t *testing.T) {
	w := newAttackWorld(t)
	for _, name := range []string{"", ".", "..", "a/b", "a\x00b"} {
		if _, err := w.m.Map(context.Background(), Caller{Name: name, UID: 1000, GID: 1000}, protocol.Request{Command: "make", Cwd: "/"}); err == nil {
			t.Errorf("user name %q was put into a path", name)
		}
	}
}
