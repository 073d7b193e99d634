package mapper

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/protocol"
)

// FuzzParse feeds arbitrary command lines (words separated by \x1f, so NUL
// and newline stay possible inside a word) and MAKEFLAGS values through the
// whole mapper. Properties: it never panics or errors; a refusal has a
// one-line message and no argv; an accepted command line has a canonical
// argv that, mapped again, is accepted with the same facts and renders to
// itself (what the policy saw is what make gets, whichever spelling).
func FuzzParse(f *testing.F) {
	for _, s := range [][2]string{
		{"-kC..\x1fall", ""}, {"--dir=a\x1f-f\x1fMakefile", "k"}, {"-j\x1f4\x1fV=1", "-- MAKEFILES=/etc/x"},
		{"--\x1f-C\x1fx", ""}, {"-sj4\x1f--debug=b\x1f-Oline", "w -I inc"}, {"--mak=f\x1f--direc\x1fa", ""},
		{"a b=c\x1fV::=1\x1fX!=id", "--eval=x"}, {"-C\x1fa\x1f-C\x1f/tmp", ""}, {"--d", ""}, {"-l\x1f.5", "s"},
	} {
		f.Add(s[0], s[1])
	}
	root, err := filepath.EvalSymlinks(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	ws := filepath.Join(root, "ws")
	for _, d := range []string{"a/b", "inc"} {
		if err := os.MkdirAll(filepath.Join(ws, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(ws, "Makefile"), nil, 0o644)
	os.Symlink("a", filepath.Join(ws, "l"))
	// "/" maps to itself as well, so canonical host paths outside the
	// workspace map back to themselves when mapped again.
	m, err := New(config.Build{WorkspaceRoot: root, PathMapping: config.PathMapping{HostTemplate: "{workspace_root}/{user}"},
		PathMappings: []config.PathMapping{{ContainerTemplate: "/", HostTemplate: "/", Mode: "ro"}}})
	if err != nil {
		f.Fatal(err)
	}
	caller := Caller{Name: "ws", UID: os.Getuid(), GID: os.Getgid()}
	f.Fuzz(func(t *testing.T, argv, makeflags string) {
		var args []string
		if argv != "" {
			args = strings.Split(argv, "\x1f")
		}
		env := map[string]string{}
		if makeflags != "" {
			env["MAKEFLAGS"] = makeflags
		}
		req := protocol.Request{Command: "make", Args: args, Cwd: ws, Env: env}
		facts, err := m.Map(context.Background(), caller, req)
		if err != nil {
			t.Fatalf("Map(%q): %v", args, err)
		}
		mf := facts.Make
		if mf.ParseError != "" {
			if strings.ContainsAny(mf.ParseError, "\n\r\x00") || len(mf.Argv) != 0 {
				t.Fatalf("refusal %q with argv %q", mf.ParseError, mf.Argv)
			}
			return
		}
		if len(mf.Argv) == 0 {
			return // a path could not be resolved; the facts say which
		}
		req.Args = mf.Argv
		again, err := m.Map(context.Background(), caller, req)
		if err != nil {
			t.Fatal(err)
		}
		a := again.Make
		if a.ParseError != "" {
			t.Fatalf("canonical argv %q of %q refused: %s", mf.Argv, args, a.ParseError)
		}
		if !slices.Equal(a.Argv, mf.Argv) {
			t.Fatalf("canonical argv is not stable:\n %q\n %q\nfrom %q", mf.Argv, a.Argv, args)
		}
		if a.EffectiveDir != mf.EffectiveDir || !slices.Equal(a.Targets, mf.Targets) || !slices.Equal(resolvedOf(a.Makefiles), resolvedOf(mf.Makefiles)) ||
			!slices.Equal(resolvedOf(a.Includes), resolvedOf(mf.Includes)) || !slices.Equal(a.Eval, mf.Eval) || len(a.Assignments) != len(mf.Assignments) {
			t.Fatalf("canonical argv %q of %q changes the facts:\n%+v\n%+v", mf.Argv, args, mf, a)
		}
	})
}

func resolvedOf(l []PathFact) []string {
	var out []string
	for _, p := range l {
		out = append(out, p.Source+" "+p.Resolved)
	}
	return out
}
