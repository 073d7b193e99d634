package engine

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/mapper"
	"github.com/build-service/build-service/policies"
	"github.com/build-service/build-service/protocol"
)

// TestRealInputDocumentsMatchTheSchema runs many requests through the real
// mapper on a real workspace (symlinks out, a FIFO, missing paths) and
// checks that every input document matches schemas/input.json and that the
// bundled policy gives a well-formed decision for each (no failure).
func TestRealInputDocumentsMatchTheSchema(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(root, "ws")
	for _, d := range []string{"ws/src/lib", "ws/inc", "outside"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"ws/Makefile", "ws/src/Makefile", "ws/src/lib/GNUmakefile", "outside/Makefile"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("all: ; @:\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"ws/out": "../outside", "ws/etc": "/etc", "ws/evil.mk": "../outside/Makefile"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	m := newMapper(t, root)
	cfg := testConfig(t)
	cfg.Build.Environment.Allow = append(cfg.Build.Environment.Allow, "GNUMAKEFLAGS", "MAKEFILES")
	e := newEngine(t, cfg)
	schema, err := fs.ReadFile(policies.FS(), policies.InputSchema)
	if err != nil {
		t.Fatal(err)
	}

	requests := []struct {
		cwd  string
		cmd  string
		args []string
		env  map[string]string
	}{
		{cwd: "$WS", args: []string{"-j4", "all"}},
		{cwd: "$WS/src", args: []string{}},
		{cwd: "$WS", args: []string{"-C", "src", "-C", "lib"}},
		{cwd: "$WS", args: []string{"-C", "../../etc"}},
		{cwd: "$WS", args: []string{"--directory=/etc"}},
		{cwd: "$WS", args: []string{"-kCout"}},
		{cwd: "$WS", args: []string{"-f", "/etc/passwd"}},
		{cwd: "$WS", args: []string{"--mak=evil.mk", "all"}},
		{cwd: "$WS", args: []string{"-f", "missing.mk"}},
		{cwd: "$WS", args: []string{"-I", "inc", "-I/usr/include", "-o", "old", "-W", "new.c"}},
		{cwd: "$WS", args: []string{"all", "-C", "etc", "--", "-C"}},
		{cwd: "$WS", args: []string{"--eval=include /etc/x.mk"}},
		{cwd: "$WS", args: []string{"X!=id", "V:=1", "W::=2", "Y+=3", "Z?=4", "SHELL=/bin/bash"}},
		{cwd: "$WS", args: []string{"MAKEFILES=/etc/x.mk", "MAKEFLAGS=-I/etc"}},
		{cwd: "$WS", args: []string{"--frobnicate"}},
		{cwd: "$WS", args: []string{"-C"}},
		{cwd: "$WS", args: []string{"--d"}},
		{cwd: "$WS", args: []string{"-n", "-s", "-k", "-B", "--debug=b", "-O", "-l", "-j"}},
		{cwd: "$WS", args: []string{"all"}, env: map[string]string{"MAKEFLAGS": "-k -- CC=tcc SHELL=/bin/zsh", "CFLAGS": "-O2"}},
		{cwd: "$WS", args: []string{"all"}, env: map[string]string{"GNUMAKEFLAGS": "-I/etc", "MAKEFILES": "/etc/a.mk evil.mk"}},
		{cwd: "$WS/out", args: []string{}},
		{cwd: "$WS/missing", args: []string{}},
		{cwd: "$WS/Makefile", args: []string{}},
		{cwd: "/somewhere/else", args: []string{}},
		{cwd: "$WS", cmd: "gcc", args: []string{"-o", "/etc/x", "x.c"}},
	}
	for _, r := range requests {
		name := strings.TrimSpace(r.cmd + " " + strings.Join(r.args, " ") + " in " + r.cwd)
		t.Run(name, func(t *testing.T) {
			cmd := r.cmd
			if cmd == "" {
				cmd = "make"
			}
			req := protocol.Request{SchemaVersion: "1", RequestID: "r", Command: cmd, Args: r.args,
				Cwd: strings.ReplaceAll(r.cwd, "$WS", ws), Env: r.env}
			f := realFacts(t, m, ws, req)
			doc := e.Input(f)
			if errs := matchSchema(t, schema, doc); errs != nil {
				bs, _ := json.MarshalIndent(doc, "", "  ")
				t.Errorf("input document does not match %s:\n%s\n%s", policies.InputSchema, strings.Join(errs, "\n"), bs)
			}
			d := e.Decide(context.Background(), f)
			if d.Failure != "" {
				t.Errorf("decision failed: %s", d.Failure)
			}
			t.Logf("allow=%v reasons=%q", d.Allow, d.Reasons)
		})
	}
}

// newMapper maps user "ws" to <root>/ws (container and host paths equal).
func newMapper(t *testing.T, root string) *mapper.Mapper {
	t.Helper()
	m, err := mapper.New(config.Build{WorkspaceRoot: root, PathMapping: config.PathMapping{HostTemplate: "{workspace_root}/{user}"}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// realFacts maps req with the real mapper, as this process's own uid,
// and wraps the result as facts of a caller "ws" with uid 1000.
func realFacts(t *testing.T, m *mapper.Mapper, ws string, req protocol.Request) Facts {
	t.Helper()
	mf, err := m.Map(context.Background(), mapper.Caller{Name: "ws", UID: os.Getuid(), GID: os.Getgid()}, req)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	return Facts{
		Request: req, Mapping: mf, Load: Load{User: 1, Total: 1},
		Peer:    Peer{UID: 1000, GID: 1000, PID: 1, Groups: []int{1000}},
		Account: Account{Known: true, Name: "ws", Home: ws, UID: 1000, GID: 1000, Groups: []int{1000}, GroupNames: map[int]string{1000: "ws"}},
	}
}

// TestDecisionLogOfRealFactsHoldsNoEnvValue: the real mapper copies parts
// of MAKEFLAGS into the facts; none of it may reach the decision log.
func TestDecisionLogOfRealFactsHoldsNoEnvValue(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(root, "ws")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Build.Environment.Allow = append(cfg.Build.Environment.Allow, "GNUMAKEFLAGS")
	cfg.Logging.DecisionLog = filepath.Join(t.TempDir(), "d.log")
	e := newEngine(t, cfg)
	m := newMapper(t, root)
	for _, env := range []map[string]string{
		{"CFLAGS": "-DKEY=s3cr3t1", "MAKEFLAGS": "-k -- TOKEN=s3cr3t2", "GNUMAKEFLAGS": "-- PASS:=s3cr3t3"},
		{"MAKEFLAGS": "k -- X!=s3cr3t4 SHELL=s3cr3t5"},
	} {
		f := realFacts(t, m, ws, protocol.Request{SchemaVersion: "1", Command: "make", Args: []string{"all"}, Cwd: ws, Env: env})
		e.Decide(context.Background(), f)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(cfg.Logging.DecisionLog)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), "\n"); n != 2 {
		t.Fatalf("%d lines, want 2", n)
	}
	if n := strings.Count(string(raw), `"value":"`+Mask+`"`); n != 4 {
		t.Errorf("%d masked assignment values, want 4 (the mapper no longer reports MAKEFLAGS assignments?):\n%s", n, raw)
	}
	if strings.Contains(string(raw), "s3cr3t") {
		t.Errorf("decision log holds an env value:\n%s", raw)
	}
}
