package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/mapper"
	"github.com/build-service/build-service/policies"
	"github.com/build-service/build-service/protocol"
)

const ws = "/srv/ws/alice/workspace"

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	c := config.Default()
	c.Logging.Directory = t.TempDir()
	c.Logging.DecisionLog = ""
	c.Build.Environment.Allow = append(c.Build.Environment.Allow, "MAKEFLAGS")
	return c
}

func newEngine(t *testing.T, cfg *config.Config) *Engine {
	t.Helper()
	e, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func intp(n int) *int { return &n }

func pathFact(option, arg, resolved string, inside bool) mapper.PathFact {
	return mapper.PathFact{Option: option, Arg: arg, Source: "argv", Host: resolved, Resolved: resolved, Inside: inside, Exists: true,
		Mapped: true, IsDir: option == "-C"}
}

// goodFacts: alice runs `make -j4 all` in her workspace, asking for CFLAGS.
func goodFacts() Facts {
	return Facts{
		Request: protocol.Request{
			SchemaVersion: "1", RequestID: "r-1", Command: "make", Args: []string{"-j4", "all"},
			Cwd: "/home/alice/project", Env: map[string]string{"CFLAGS": "-O2"},
		},
		Peer: Peer{UID: 1000, GID: 1000, PID: 4242, Groups: []int{1000, 100}},
		Account: Account{
			Known: true, Name: "alice", Home: "/home/alice", UID: 1000, GID: 1000,
			Groups: []int{1000, 100, 27}, GroupNames: map[int]string{1000: "alice", 100: "users", 27: "sudo"},
		},
		Mapping: &mapper.Facts{
			Workspace: mapper.WorkspaceFacts{Container: "/home/alice", Host: ws, Resolved: ws, Exists: true, Safe: true},
			Cwd: mapper.CwdFacts{Container: "/home/alice/project", Host: ws + "/project", Resolved: ws + "/project",
				Mapped: true, Inside: true, IsDir: true},
			Make: &mapper.MakeFacts{
				Argv: []string{"--jobs=4", "all"}, Targets: []string{"all"}, Options: []string{"--jobs"},
				EffectiveDir: ws + "/project", EffectiveInside: true, EffectiveIsDir: true,
				DefaultMakefile: &mapper.PathFact{Option: "-f", Arg: "Makefile", Source: "default", Host: ws + "/project/Makefile",
					Resolved: ws + "/project/Makefile", Inside: true, Exists: true, Mapped: true},
			},
		},
		Load: Load{User: 1, Total: 1},
	}
}

// variants are requests that exercise every part of the input document;
// the bundled policy's verdict on each is checked in TestBundledPolicy and
// every one's input document is validated against the schema.
var variants = []struct {
	name   string
	change func(f *Facts)
	rules  []string // nil: allowed
	reason string   // one expected reason, exactly
}{
	{name: "alice building in her workspace is allowed", change: func(f *Facts) {}},
	{name: "a doctor request with no make facts is allowed", change: func(f *Facts) {
		f.Request.Type = protocol.TypeDoctor
		f.Mapping.Make = nil
	}},
	{name: "a timeout above the cap is allowed and capped", change: func(f *Facts) { f.Request.TimeoutSec = intp(99999) }},
	{name: "a root caller is refused", change: func(f *Facts) {
		f.Peer.UID, f.Account.UID, f.Account.Name, f.Account.Home = 0, 0, "root", "/root"
	}, rules: []string{"identity.root_caller"}, reason: "callers running as root are refused: run make as your own user"},
	{name: "a uid with no account is refused", change: func(f *Facts) {
		f.Peer.UID = 12345
		f.Account = Account{Known: false}
	}, rules: []string{"identity.unknown_account"}, reason: "uid 12345 has no account on this host"},
	{name: "a gid the account does not have is refused", change: func(f *Facts) { f.Peer.GID = 4242 },
		rules: []string{"identity.foreign_gid"}},
	{name: "attack: running as the account's denied group sudo (sg sudo make) is refused", change: func(f *Facts) { f.Peer.GID = 27 },
		rules:  []string{"identity.denied_gid"},
		reason: "gid 27 is in build.identity.deny_groups (builds never run with it): run with your own group (primary gid 1000)"},
	{name: "gcc is not an allowed command", change: func(f *Facts) {
		f.Request.Command = "gcc"
		f.Mapping.Make = nil
	}, rules: []string{"command.not_allowed"}, reason: `command "gcc" is not allowed (allowed: make)`},
	{name: "-C ../../etc leaves the workspace", change: func(f *Facts) {
		f.Request.Args = []string{"-C", "../../etc"}
		f.Mapping.Make.Directories = []mapper.PathFact{pathFact("-C", "../../etc", "/etc", false)}
		f.Mapping.Make.EffectiveDir, f.Mapping.Make.EffectiveInside = "/etc", false
	}, rules: []string{"workspace.directory_outside"}, reason: "-C ../../etc leaves the workspace " + ws},
	{name: "-f /etc/passwd is outside the workspace", change: func(f *Facts) {
		f.Mapping.Make.Makefiles = []mapper.PathFact{pathFact("-f", "/etc/passwd", "/etc/passwd", false)}
	}, rules: []string{"workspace.file_outside"}, reason: "-f /etc/passwd is outside the workspace " + ws},
	{name: "a cwd outside the workspace is refused", change: func(f *Facts) {
		f.Mapping.Cwd = mapper.CwdFacts{Container: "/etc", Mapped: false}
		f.Mapping.Make.EffectiveDir, f.Mapping.Make.EffectiveInside = "/etc", false
	}, rules: []string{"workspace.cwd_unmapped"}},
	{name: "--eval is refused", change: func(f *Facts) {
		f.Mapping.Make.Eval = []string{"include /etc/x.mk"}
	}, rules: []string{"make_args.eval"}},
	{name: "SHELL= smuggled in MAKEFLAGS is refused", change: func(f *Facts) {
		f.Request.Env["MAKEFLAGS"] = "-- SHELL=/tmp/sh"
		f.Mapping.Make.Assignments = []mapper.Assignment{{Name: "SHELL", Op: "=", Value: "/tmp/sh", Source: "MAKEFLAGS"}}
	}, rules: []string{"make_args.denied_variable"}},
	{name: "an unparsable command line is refused", change: func(f *Facts) {
		f.Mapping.Make = &mapper.MakeFacts{ParseError: "unrecognized option '--frobnicate'"}
	}, rules: []string{"make_args.parse_error"}, reason: "make arguments not understood: unrecognized option '--frobnicate'"},
	{name: "a zero timeout is refused", change: func(f *Facts) { f.Request.TimeoutSec = intp(0) },
		rules: []string{"timeout.not_positive"}},
	{name: "a fifth build of one user is refused", change: func(f *Facts) { f.Load = Load{User: 5, Total: 5} },
		rules: []string{"load.user_cap"}},
	{name: "several problems are all reported, in order of concern", change: func(f *Facts) {
		f.Peer.UID = 0
		f.Request.Command = "sh"
		f.Load = Load{User: 9, Total: 99}
	}, rules: []string{"identity.root_caller", "command.not_allowed", "load.total_cap", "load.user_cap"}},
}

func TestBundledPolicy(t *testing.T) {
	e := newEngine(t, testConfig(t))
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			f := goodFacts()
			v.change(&f)
			d := e.Decide(context.Background(), f)
			if d.Failure != "" {
				t.Fatalf("decision failed: %s", d.Failure)
			}
			var rules []string
			for _, dn := range d.Denials {
				rules = append(rules, dn.Rule)
			}
			if d.Allow != (v.rules == nil) || !slices.Equal(rules, v.rules) {
				t.Fatalf("allow=%v rules=%q reasons=%q; want rules %q", d.Allow, rules, d.Reasons, v.rules)
			}
			if v.reason != "" && !slices.Contains(d.Reasons, v.reason) {
				t.Errorf("reasons %q lack %q", d.Reasons, v.reason)
			}
			if len(d.Reasons) != len(d.Denials) {
				t.Errorf("%d reasons for %d denials", len(d.Reasons), len(d.Denials))
			}
		})
	}

	t.Run("an allowed build gets the config's environment, limits and timeout", func(t *testing.T) {
		f := goodFacts()
		f.Request.Env["AWS_SECRET_ACCESS_KEY"] = "x"
		f.Request.Env["HOME"] = "/root"
		d := e.Decide(context.Background(), f)
		want := Decision{
			Allow: true, Reasons: []string{}, TimeoutSec: 600,
			Env: map[string]string{"CFLAGS": "-O2", "HOME": "/home/alice", "USER": "alice", "LOGNAME": "alice",
				"PATH": "/usr/local/bin:/usr/bin:/bin"},
			Limits:     Limits{PidsMax: 4096, MemoryMax: 8 << 30},
			NoNewPrivs: true,
			Identity:   Identity{UID: 1000, GID: 1000, Groups: []int{100, 1000}, GIDAllowed: true, Dropped: []int{}},
			DecisionID: d.DecisionID, Revision: e.Revision(), Denials: []Denial{},
		}
		if !reflect.DeepEqual(d, want) {
			t.Errorf("decision\n got %+v\nwant %+v", d, want)
		}
	})
	t.Run("a capped timeout says so", func(t *testing.T) {
		f := goodFacts()
		f.Request.TimeoutSec = intp(99999)
		d := e.Decide(context.Background(), f)
		if !d.Allow || d.TimeoutSec != 3600 || !d.TimeoutCapped {
			t.Errorf("allow=%v timeout=%d capped=%v, want 3600 capped", d.Allow, d.TimeoutSec, d.TimeoutCapped)
		}
	})
	t.Run("every decision has its own id", func(t *testing.T) {
		a, b := e.Decide(context.Background(), goodFacts()), e.Decide(context.Background(), goodFacts())
		if a.DecisionID == b.DecisionID || len(a.DecisionID) != 36 {
			t.Errorf("decision ids %q and %q", a.DecisionID, b.DecisionID)
		}
	})
	t.Run("explain names the rule behind a denial and writes no log", func(t *testing.T) {
		f := goodFacts()
		f.Mapping.Make.Directories = []mapper.PathFact{pathFact("-C", "../../etc", "/etc", false)}
		ex := e.Explain(context.Background(), f)
		if ex.Decision.Allow || len(ex.Decision.Denials) != 1 || ex.Decision.Denials[0].Rule != "workspace.directory_outside" {
			t.Errorf("explain decision %+v", ex.Decision)
		}
		if ex.Input["make"] == nil || ex.Result == nil {
			t.Errorf("explain lacks the input or the raw result: %v / %v", ex.Input, ex.Result)
		}
	})
}

// matchSchema validates doc against the JSON Schema in schema with OPA's
// own json.match_schema (OPA's vendored gojsonschema is internal).
func matchSchema(t *testing.T, schema []byte, doc any) []string {
	t.Helper()
	var s any
	if err := json.Unmarshal(schema, &s); err != nil {
		t.Fatal(err)
	}
	rs, err := rego.New(
		rego.Query("x := json.match_schema(input.doc, input.schema)"),
		rego.Input(map[string]any{"doc": doc, "schema": s}),
	).Eval(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("json.match_schema: %v (%d results)", err, len(rs))
	}
	res := rs[0].Bindings["x"].([]any)
	if res[0].(bool) {
		return nil
	}
	var errs []string
	for _, e := range res[1].([]any) {
		m := e.(map[string]any)
		errs = append(errs, m["field"].(string)+": "+m["desc"].(string))
	}
	return errs
}

func TestInputDocumentsMatchTheSchema(t *testing.T) {
	schema, err := fs.ReadFile(policies.FS(), policies.InputSchema)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, testConfig(t))
	extra := []struct {
		name   string
		change func(f *Facts)
	}{
		{"no mapping facts at all", func(f *Facts) { f.Mapping = nil }},
		{"nil slices everywhere", func(f *Facts) {
			f.Request.Args, f.Request.Env, f.Peer.Groups, f.Account.Groups = nil, nil, nil, nil
			f.Mapping.Make = &mapper.MakeFacts{}
		}},
		{"every kind of path fact and assignment", func(f *Facts) {
			f.Request.TimeoutSec = intp(30)
			f.Mapping.Workspace.Safe, f.Mapping.Workspace.UnsafeReason = false, "/srv is writable by others"
			m := f.Mapping.Make
			m.Directories = []mapper.PathFact{pathFact("-C", "sub", ws+"/sub", true)}
			m.Makefiles = []mapper.PathFact{pathFact("-f", "GNUmakefile", ws+"/GNUmakefile", true)}
			m.Includes = []mapper.PathFact{pathFact("-I", "inc", ws+"/inc", true)}
			m.OtherFiles = []mapper.PathFact{pathFact("-o", "old", ws+"/old", true), {Option: "MAKEFILES", Arg: "a.mk", Source: "MAKEFILES", Error: "permission denied"}}
			m.DefaultMakefile = nil
			f.Mapping.Cwd.Error = "no such directory"
			m.Assignments = []mapper.Assignment{{Name: "V", Op: ":=", Value: "1", Source: "argv"}, {Name: "X", Op: "!=", Value: "ls", Source: "GNUMAKEFLAGS"}}
			m.Eval = []string{"all:"}
		}},
	}
	check := func(t *testing.T, f Facts) {
		doc := e.Input(f)
		if errs := matchSchema(t, schema, doc); errs != nil {
			bs, _ := json.MarshalIndent(doc, "", "  ")
			t.Errorf("input document does not match %s:\n%s\n%s", policies.InputSchema, strings.Join(errs, "\n"), bs)
		}
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			f := goodFacts()
			v.change(&f)
			check(t, f)
		})
	}
	for _, v := range extra {
		t.Run(v.name, func(t *testing.T) {
			f := goodFacts()
			v.change(&f)
			check(t, f)
		})
	}
	t.Run("a document with a misspelt field does not match", func(t *testing.T) {
		doc := e.Input(goodFacts())
		doc["cwd"].(map[string]any)["resolvd"] = "/x"
		if errs := matchSchema(t, schema, doc); errs == nil {
			t.Error("schema accepted input.cwd.resolvd")
		}
	})
}

// writePolicy writes files into a fresh directory and returns it.
func writePolicy(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func operatorEngine(t *testing.T, files map[string]string) (*Engine, error) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Policy.Directory = writePolicy(t, files)
	e, err := New(context.Background(), cfg)
	if e != nil {
		t.Cleanup(func() { _ = e.Close() })
	}
	return e, err
}

func TestOperatorPolicyIsRefusedAtStartup(t *testing.T) {
	const okDecision = "package build_service\n\ndecision := {\"allow\": false, \"reasons\": [\"no\"]}\n"
	cases := []struct {
		name  string
		files map[string]string
		is    error
		want  []string // substrings of the error
	}{
		{"a syntax error, with file and line",
			map[string]string{"broken.rego": "package build_service\n\ndecision := {\n"},
			ErrCompile, []string{"broken.rego:4", "rego_parse_error"}},
		{"a misspelt input field, caught by the schema",
			map[string]string{"typo.rego": "package build_service\n\nimport rego.v1\n\n# METADATA\n# schemas:\n#   - input: schema.input\ndecision := {\"allow\": input.cwd.resolvd == \"\", \"reasons\": []}\n"},
			ErrCompile, []string{"typo.rego:8", "rego_type_error", "resolvd"}},
		{"a call to http.send", map[string]string{"p.rego": okDecision + "\nleak := http.send({\"method\": \"get\", \"url\": \"http://x\"})\n"},
			ErrCompile, []string{"p.rego:5", "http.send"}},
		{"a DNS lookup", map[string]string{"p.rego": okDecision + "\nleak := net.lookup_ip_addr(\"example.com\")\n"},
			ErrCompile, []string{"net.lookup_ip_addr"}},
		{"a read of the daemon's environment", map[string]string{"p.rego": okDecision + "\nleak := opa.runtime().env\n"},
			ErrCompile, []string{"opa.runtime"}},
		{"a clock read", map[string]string{"p.rego": okDecision + "\nnow := time.now_ns()\n"},
			ErrCompile, []string{"time.now_ns"}},
		{"no entry point", map[string]string{"p.rego": "package build_service\n\nallow := true\n"},
			ErrNoEntryPoint, []string{"p.rego", "data.build_service.decision"}},
		{"no rego files at all", map[string]string{"README": "x"}, ErrNoEntryPoint, nil},
		{"a data.json that claims data.config",
			map[string]string{"p.rego": okDecision, "data.json": `{"config": {"build": {}}}`},
			ErrReservedConfig, []string{"data.json", `"config"`}},
		{"a package under data.config",
			map[string]string{"p.rego": okDecision, "c.rego": "package config\n\nbuild := {}\n"},
			ErrReservedConfig, []string{"c.rego"}},
		{"a data.json that is not an object", map[string]string{"p.rego": okDecision, "data.json": `[1]`}, nil, []string{"not an object"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := operatorEngine(t, c.files)
			if err == nil {
				t.Fatal("New accepted the policy")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	t.Run("a policy others can write", func(t *testing.T) {
		for _, c := range []struct {
			what string
			fix  func(dir string) error
		}{
			{"a world-writable file", func(dir string) error { return os.Chmod(filepath.Join(dir, "p.rego"), 0o666) }},
			{"a group-writable directory", func(dir string) error { return os.Chmod(dir, 0o775) }},
			{"a world-writable parent without the sticky bit", func(dir string) error { return os.Chmod(filepath.Dir(dir), 0o777) }},
		} {
			cfg := testConfig(t)
			parent := filepath.Join(t.TempDir(), "etc")
			cfg.Policy.Directory = filepath.Join(parent, "policy")
			if err := ExportBundled(cfg.Policy.Directory); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cfg.Policy.Directory, "p.rego"), []byte("package build_service.extra\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := Check(context.Background(), cfg); err != nil {
				t.Fatalf("%s: the exported policy itself is refused: %v", c.what, err)
			}
			if err := c.fix(cfg.Policy.Directory); err != nil {
				t.Fatal(err)
			}
			if err := Check(context.Background(), cfg); !errors.Is(err, ErrUnsafePolicy) {
				t.Errorf("%s: %v, want ErrUnsafePolicy", c.what, err)
			}
		}
	})
	t.Run("a policy file owned by another user", func(t *testing.T) {
		testenv.RequireRoot(t)
		cfg := testConfig(t)
		cfg.Policy.Directory = writePolicy(t, map[string]string{"p.rego": okDecision})
		if err := os.Chown(filepath.Join(cfg.Policy.Directory, "p.rego"), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := Check(context.Background(), cfg); !errors.Is(err, ErrUnsafePolicy) || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("%v, want ErrUnsafePolicy naming the owner", err)
		}
	})
	t.Run("a refused policy leaves the engine already serving untouched", func(t *testing.T) {
		serving := newEngine(t, testConfig(t))
		if _, err := operatorEngine(t, map[string]string{"p.rego": "package build_service\n\ndecision := {\n"}); err == nil {
			t.Fatal("broken policy accepted")
		}
		if d := serving.Decide(context.Background(), goodFacts()); !d.Allow {
			t.Errorf("serving engine: %+v", d)
		}
	})
	t.Run("check-config refuses the same way", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Policy.Directory = writePolicy(t, map[string]string{"p.rego": "package build_service\n"})
		if err := Check(context.Background(), cfg); !errors.Is(err, ErrNoEntryPoint) {
			t.Errorf("Check: %v", err)
		}
		if err := Check(context.Background(), testConfig(t)); err != nil {
			t.Errorf("Check of the bundled policy: %v", err)
		}
	})
}

// answering is an operator policy that returns whatever data.json says.
func answering(t *testing.T, cfg *config.Config, answer string) *Engine {
	t.Helper()
	cfg.Policy.Directory = writePolicy(t, map[string]string{
		"p.rego":    "package build_service\n\ndecision := data.answer\n",
		"data.json": `{"answer": ` + answer + `}`,
	})
	return newEngine(t, cfg)
}

const allowAll = `{"allow": true, "reasons": [], "timeout_sec": 60,
  "env": {"CFLAGS": "-O2", "HOME": "/home/alice", "USER": "alice", "LOGNAME": "alice", "PATH": "/bin"},
  "limits": {"pids_max": 10, "memory_max": 1024, "cpu_max": "50000 100000"}, "no_new_privs": false}`

func TestMalformedDecisionsDeny(t *testing.T) {
	cases := []struct {
		name, answer, want string
	}{
		{"an unknown key", `{"allow": true, "reasons": [], "timeout_sec": 60, "env": {}, "alow": true}`, `unknown key "alow"`},
		{"allow as a string", `{"allow": "yes", "reasons": []}`, `key "allow" must be a boolean`},
		{"no allow", `{"reasons": []}`, `key "allow" is missing`},
		{"no reasons", `{"allow": false}`, `key "reasons" is missing`},
		{"a reason that is not a string", `{"allow": false, "reasons": [1]}`, `key "reasons" item 0 must be a string`},
		{"a fractional timeout", `{"allow": true, "reasons": [], "timeout_sec": 1.5, "env": {}}`, `key "timeout_sec" must be an integer`},
		{"a timeout as a string", `{"allow": true, "reasons": [], "timeout_sec": "60", "env": {}}`, `key "timeout_sec" must be an integer`},
		{"an allow without a timeout", `{"allow": true, "reasons": [], "env": {}}`, `key "timeout_sec" is missing`},
		{"an allow without env", `{"allow": true, "reasons": [], "timeout_sec": 60}`, `key "env" is missing`},
		{"an env value that is a number", `{"allow": true, "reasons": [], "timeout_sec": 60, "env": {"CFLAGS": 2}}`, `key "env" value of "CFLAGS" must be a string`},
		{"an unknown limit", `{"allow": true, "reasons": [], "timeout_sec": 60, "env": {}, "limits": {"pids": 5}}`, `unknown key "limits.pids"`},
		{"a negative limit", `{"allow": true, "reasons": [], "timeout_sec": 60, "env": {}, "limits": {"memory_max": -1}}`, `"limits.memory_max" must not be negative`},
		{"no_new_privs as a string", `{"allow": true, "reasons": [], "timeout_sec": 60, "env": {}, "no_new_privs": "no"}`, `key "no_new_privs" must be a boolean`},
		{"a malformed denial", `{"allow": false, "reasons": ["x"], "denials": [{"rule": "x"}]}`, `key "denials" item 0`},
		{"a decision that is not an object", `true`, "want an object, got a boolean"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := answering(t, testConfig(t), c.answer).Decide(context.Background(), goodFacts())
			if d.Allow || d.Failure == "" || len(d.Reasons) != 1 || !strings.Contains(d.Reasons[0], c.want) {
				t.Errorf("allow=%v failure=%q reasons=%q; want a failed deny naming %q", d.Allow, d.Failure, d.Reasons, c.want)
			}
			if len(d.Denials) != 1 || d.Denials[0].Rule != "engine.malformed" {
				t.Errorf("denials %+v, want engine.malformed", d.Denials)
			}
		})
	}
	t.Run("an undefined decision", func(t *testing.T) {
		e, err := operatorEngine(t, map[string]string{"p.rego": "package build_service\n\ndecision := 1 if input.nothing\n"})
		if err != nil {
			t.Fatal(err)
		}
		d := e.Decide(context.Background(), goodFacts())
		if d.Allow || !strings.Contains(d.Failure, "is undefined") {
			t.Errorf("allow=%v failure=%q", d.Allow, d.Failure)
		}
	})
	t.Run("two results", func(t *testing.T) {
		e := newEngine(t, testConfig(t))
		two := rego.ResultSet{
			{Expressions: []*rego.ExpressionValue{{Value: map[string]any{"allow": true}}}},
			{Expressions: []*rego.ExpressionValue{{Value: map[string]any{"allow": true}}}},
		}
		d := Decision{}
		e.fromResults(&d, two, goodFacts(), func(_ bool, rule, format string, a ...any) {
			d.Denials = append(d.Denials, Denial{Rule: rule})
		})
		if d.Allow || len(d.Denials) != 1 || d.Denials[0].Rule != "engine.ambiguous" {
			t.Errorf("decision %+v", d)
		}
	})
	t.Run("a builtin error during evaluation", func(t *testing.T) {
		e, err := operatorEngine(t, map[string]string{"p.rego": "package build_service\n\ndecision := {\"allow\": to_number(input.request.command) > 0, \"reasons\": []}\n"})
		if err != nil {
			t.Fatal(err)
		}
		d := e.Decide(context.Background(), goodFacts())
		if d.Allow || !strings.Contains(d.Failure, "policy evaluation failed") {
			t.Errorf("allow=%v failure=%q", d.Allow, d.Failure)
		}
	})
	t.Run("an evaluation that takes too long", func(t *testing.T) {
		e, err := operatorEngine(t, map[string]string{"p.rego": `package build_service

r := numbers.range(1, 2000)

decision := {"allow": n == 0, "reasons": []} if {
	n := count([1 | some a in r; some b in r; some c in r; a + b + c < 0])
}
`})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		d := e.Decide(context.Background(), goodFacts())
		if d.Allow || !strings.Contains(d.Failure, "timed out after 2s") {
			t.Errorf("allow=%v failure=%q", d.Allow, d.Failure)
		}
		if el := time.Since(start); el > 15*time.Second {
			t.Errorf("a timed-out evaluation took %s", el)
		}
	})
	t.Run("a cancelled request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		d := newEngine(t, testConfig(t)).Decide(ctx, goodFacts())
		if d.Allow || d.Failure == "" {
			t.Errorf("allow=%v failure=%q", d.Allow, d.Failure)
		}
	})
	t.Run("a deny without reasons gets one", func(t *testing.T) {
		d := answering(t, testConfig(t), `{"allow": false, "reasons": []}`).Decide(context.Background(), goodFacts())
		if d.Allow || len(d.Reasons) != 1 || d.Failure != "" {
			t.Errorf("decision %+v", d)
		}
	})
}

func TestInvariantsHoldWhateverThePolicySays(t *testing.T) {
	cases := []struct {
		name   string
		answer string
		change func(f *Facts, cfg *config.Config)
		rule   string // "" = allowed
	}{
		{"a well-formed allow is obeyed", allowAll, func(f *Facts, cfg *config.Config) {}, ""},
		{"a root caller", allowAll, func(f *Facts, _ *config.Config) { f.Peer.UID, f.Account.UID = 0, 0 }, "engine.root"},
		{"an unknown account", allowAll, func(f *Facts, _ *config.Config) { f.Account = Account{} }, "engine.account"},
		{"a gid the account lacks", allowAll, func(f *Facts, _ *config.Config) { f.Peer.GID = 0 }, "engine.gid"},
		{"attack: a denied group of the account as the gid", allowAll, func(f *Facts, _ *config.Config) { f.Peer.GID = 27 }, "engine.gid"},
		{"a command outside build.commands", allowAll, func(f *Facts, _ *config.Config) { f.Request.Command = "bash" }, "engine.command"},
		{"no path facts", allowAll, func(f *Facts, _ *config.Config) { f.Mapping = nil }, "engine.no_facts"},
		{"an unparsed argv", allowAll, func(f *Facts, _ *config.Config) { f.Mapping.Make.ParseError = "bad" }, "engine.unparsed_argv"},
		{"a timeout above max_sec", strings.Replace(allowAll, `"timeout_sec": 60`, `"timeout_sec": 99999`, 1),
			func(*Facts, *config.Config) {}, "engine.timeout"},
		{"a zero timeout", strings.Replace(allowAll, `"timeout_sec": 60`, `"timeout_sec": 0`, 1),
			func(*Facts, *config.Config) {}, "engine.timeout"},
		{"an env name nobody supplied", strings.Replace(allowAll, `"PATH": "/bin"`, `"PATH": "/bin", "LD_PRELOAD": "/x.so"`, 1),
			func(*Facts, *config.Config) {}, "engine.env"},
		{"a requested env name that is not allowlisted", allowAll,
			func(_ *Facts, cfg *config.Config) { cfg.Build.Environment.Allow = []string{"CC"} }, "engine.env"},
		{"a HOME other than the account's", strings.Replace(allowAll, `"HOME": "/home/alice"`, `"HOME": "/root"`, 1),
			func(*Facts, *config.Config) {}, "engine.env_account"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			f := goodFacts()
			c.change(&f, cfg)
			d := answering(t, cfg, c.answer).Decide(context.Background(), f)
			if c.rule == "" {
				if !d.Allow || d.TimeoutSec != 60 || d.NoNewPrivs || d.Limits != (Limits{10, 1024, "50000 100000"}) {
					t.Errorf("decision %+v", d)
				}
				return
			}
			if d.Allow || d.Failure == "" || !slices.ContainsFunc(d.Denials, func(x Denial) bool { return x.Rule == c.rule }) {
				t.Errorf("allow=%v failure=%q denials=%+v; want a deny by %s", d.Allow, d.Failure, d.Denials, c.rule)
			}
		})
	}
}

func TestAnOperatorPolicyThatAllowsOnlyMakeNIsObeyed(t *testing.T) {
	e, err := operatorEngine(t, map[string]string{"only_dry_run.rego": `package build_service

dry_run if input.make.options == ["--just-print"]

decision := {
	"allow": true,
	"reasons": [],
	"timeout_sec": 60,
	"env": {"PATH": "/usr/bin:/bin", "HOME": input.account.home},
} if dry_run

else := {"allow": false, "reasons": ["only make -n is allowed on this host"]}
`})
	if err != nil {
		t.Fatal(err)
	}
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
	m := newMapper(t, root)
	// The real mapper canonicalises every spelling of -n, so the policy
	// needs to know only one.
	for _, c := range []struct {
		args  []string
		allow bool
	}{
		{[]string{"-n"}, true},
		{[]string{"--dry-run"}, true},
		{[]string{"--rec"}, true},
		{[]string{"--just-print", "-n"}, true},
		{[]string{"all"}, false},
		{[]string{"-nk"}, false},
		{[]string{"-n", "-j4"}, false},
		{[]string{}, false},
	} {
		t.Run(strings.Join(append([]string{"make"}, c.args...), " "), func(t *testing.T) {
			f := realFacts(t, m, ws, protocol.Request{SchemaVersion: "1", Command: "make", Args: c.args, Cwd: ws})
			d := e.Decide(context.Background(), f)
			if d.Allow != c.allow || d.Failure != "" {
				t.Fatalf("allow=%v failure=%q reasons=%q; want allow=%v", d.Allow, d.Failure, d.Reasons, c.allow)
			}
			if c.allow && (d.TimeoutSec != 60 || !d.NoNewPrivs || len(d.Env) != 2) {
				t.Errorf("allowed decision %+v", d)
			}
			if !c.allow && (!slices.Equal(d.Reasons, []string{"only make -n is allowed on this host"}) || d.Denials[0].Rule != "policy") {
				t.Errorf("denied decision %+v", d)
			}
		})
	}
}

func TestDecisionLog(t *testing.T) {
	cfg := testConfig(t)
	cfg.Logging.DecisionLog = "decisions.log"
	e := newEngine(t, cfg)
	again := newEngine(t, cfg) // a reload: the same file, one rotator

	f := goodFacts()
	f.Request.Env = map[string]string{"CFLAGS": "-DTOKEN=s3cr3t-cflags", "MAKEFLAGS": "-- V=s3cr3t-makeflags"}
	f.Mapping.Make.Assignments = []mapper.Assignment{{Name: "V", Op: "=", Value: "s3cr3t-makeflags", Source: "MAKEFLAGS"}}
	allowed := e.Decide(context.Background(), f)
	denied := f
	denied.Request.Command = "gcc"
	refused := again.Decide(context.Background(), denied)
	e.Explain(context.Background(), f) // not logged
	dry, err := Prepare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	dry.Decide(context.Background(), f) // not logged either: no decision log
	if !allowed.Allow || refused.Allow {
		t.Fatalf("allowed=%+v refused=%+v", allowed, refused)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	third := again.Decide(context.Background(), f) // still logs after the old engine closed
	var wg sync.WaitGroup
	for range 16 { // concurrent decisions never interleave within a line
		wg.Go(func() { again.Decide(context.Background(), goodFacts()) })
	}
	wg.Wait()
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	again.Decide(context.Background(), f) // after the last close: decided, not logged
	if err := again.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	path := filepath.Join(cfg.Logging.Directory, "decisions.log")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("decision log mode %v, want no access for group and others", st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("s3cr3t")) {
		t.Errorf("decision log holds an env value:\n%s", raw)
	}
	schema, err := os.ReadFile("testdata/decision_log.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var entry map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&entry); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, sc.Bytes())
		}
		if errs := matchSchema(t, schema, entry); errs != nil {
			t.Errorf("entry does not match the schema: %s\n%s", strings.Join(errs, "; "), sc.Bytes())
		}
		ids = append(ids, entry["decision_id"].(string))
		if env := entry["input"].(map[string]any)["env"].(map[string]any); env["CFLAGS"] != Mask {
			t.Errorf("input.env.CFLAGS = %v, want the mask", env["CFLAGS"])
		}
	}
	if want := []string{allowed.DecisionID, refused.DecisionID, third.DecisionID}; len(ids) != 19 || !slices.Equal(ids[:3], want) {
		t.Errorf("logged decision ids %q, want %q", ids, want)
	}
}

func TestPolicyTooling(t *testing.T) {
	ctx := context.Background()
	t.Run("the bundled tests pass with at least 95% line coverage", func(t *testing.T) {
		var out bytes.Buffer
		rep, err := PolicyTests(ctx, "", &out)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Failed != 0 || rep.Passed < 40 {
			t.Errorf("%d passed, %d failed:\n%s", rep.Passed, rep.Failed, out.String())
		}
		t.Logf("bundled policy: %d tests, line coverage %.2f%%", rep.Passed, rep.Coverage)
		if rep.Coverage < 95 {
			t.Errorf("line coverage %.2f%% < 95%%; not covered: %v", rep.Coverage, rep.NotCovered)
		}
	})
	t.Run("a rule no test reaches lowers the coverage and is named", func(t *testing.T) {
		half := writePolicy(t, map[string]string{
			"p.rego":      "package p\n\na := 1\n\nb := 2 if {\n\tinput.x\n}\n",
			"p_test.rego": "package p_test\n\ntest_a if data.p.a == 1\n",
		})
		rep, err := PolicyTests(ctx, half, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Passed != 1 || rep.Coverage >= 95 || !slices.ContainsFunc(rep.NotCovered, func(s string) bool { return strings.HasSuffix(s, "p.rego:6") }) {
			t.Errorf("report %+v, want p.rego:6 not covered and coverage below 95%%", rep)
		}
	})
	dir := filepath.Join(t.TempDir(), "policy")
	t.Run("export writes the whole bundled set", func(t *testing.T) {
		if err := ExportBundled(dir); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{".manifest", "decision.rego", "workspace_test.rego", policies.InputSchema, policies.Capabilities} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("export refuses to overwrite", func(t *testing.T) {
		if err := os.Remove(filepath.Join(dir, "decision.rego")); err != nil {
			t.Fatal(err)
		}
		if err := ExportBundled(dir); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("second export: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "decision.rego")); !errors.Is(err, fs.ErrNotExist) {
			t.Error("a refused export wrote files")
		}
		if err := os.WriteFile(filepath.Join(dir, "decision.rego"), mustRead(t, "decision.rego"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the exported set serves with the bundled revision", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Policy.Directory = dir
		if got, want := newEngine(t, cfg).Revision(), newEngine(t, testConfig(t)).Revision(); got != want {
			t.Errorf("revision %s, bundled %s", got, want)
		}
	})
	t.Run("policy test runs an operator directory's tests", func(t *testing.T) {
		var out bytes.Buffer
		if err := RunPolicyTests(ctx, dir, &out); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "PASS") || !strings.Contains(out.String(), "policy line coverage") {
			t.Errorf("report:\n%s", out.String())
		}
		failing := writePolicy(t, map[string]string{"p_test.rego": "package p_test\n\ntest_fails if false\n"})
		if err := RunPolicyTests(ctx, failing, &out); !errors.Is(err, ErrTestsFailed) {
			t.Errorf("failing tests: %v", err)
		}
	})
	t.Run("an operator allows SHELL= with data.json alone", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Policy.Directory = filepath.Join(t.TempDir(), "policy")
		if err := ExportBundled(cfg.Policy.Directory); err != nil {
			t.Fatal(err)
		}
		settings := `{"build_service": {"settings": {"make_args": {"allow_variables": ["SHELL"]}}}}`
		if err := os.WriteFile(filepath.Join(cfg.Policy.Directory, "data.json"), []byte(settings), 0o644); err != nil {
			t.Fatal(err)
		}
		e := newEngine(t, cfg)
		f := goodFacts()
		f.Mapping.Make.Assignments = []mapper.Assignment{{Name: "SHELL", Op: "=", Value: "/bin/bash", Source: "argv"}}
		if d := e.Decide(ctx, f); !d.Allow {
			t.Errorf("SHELL= with the setting: %+v", d.Reasons)
		}
		f.Mapping.Make.Assignments[0].Name = "MAKE"
		if d := e.Decide(ctx, f); d.Allow {
			t.Error("MAKE= allowed by a setting that names only SHELL")
		}
		if e.Revision() == newEngine(t, testConfig(t)).Revision() {
			t.Error("data.json does not change the revision")
		}
	})
	t.Run("opa check with the schema catches a misspelt input field", func(t *testing.T) {
		check := func() ([]byte, error) {
			cmd := exec.Command("go", "tool", "opa", "check", "--strict",
				"--capabilities", filepath.Join(dir, policies.Capabilities),
				"--schema", filepath.Join(dir, policies.SchemaDir),
				"--ignore", "schemas", "--ignore", "capabilities.json", dir)
			cmd.Dir = ".."
			return cmd.CombinedOutput()
		}
		if out, err := check(); err != nil {
			t.Fatalf("opa check of the exported set: %v\n%s", err, out)
		}
		p := filepath.Join(dir, "workspace.rego")
		src := mustRead(t, "workspace.rego")
		typo := bytes.Replace(src, []byte("input.cwd.container"), []byte("input.cwd.resolvd"), 1)
		if bytes.Equal(typo, src) {
			t.Fatal("workspace.rego no longer reads input.cwd.container")
		}
		if err := os.WriteFile(p, typo, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := check()
		if err == nil || !strings.Contains(string(out), "undefined ref: input.cwd.resolvd") {
			t.Errorf("opa check accepted input.cwd.resolvd: %v\n%s", err, out)
		}
	})
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	bs, err := fs.ReadFile(policies.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

func TestCapabilitiesLeaveOutWhatReachesOutside(t *testing.T) {
	caps, err := capabilities()
	if err != nil {
		t.Fatal(err)
	}
	shipped := map[string]bool{}
	for _, b := range caps.Builtins {
		shipped[b.Name] = true
	}
	if len(caps.AllowNet) != 0 || caps.AllowNet == nil {
		t.Errorf("allow_net = %v, want [] (no host at all)", caps.AllowNet)
	}
	for _, b := range ast.CapabilitiesForThisVersion().Builtins {
		if leaves(b.Name) == shipped[b.Name] {
			t.Errorf("builtin %s: shipped=%v; regenerate %s from this OPA version, minus the builtins that reach outside",
				b.Name, shipped[b.Name], policies.Capabilities)
		}
	}
}

// leaves reports the builtins a policy must not have: they reach the
// network, the daemon's runtime and environment, the clock or randomness.
func leaves(name string) bool {
	switch name {
	case "http.send", "opa.runtime", "time.now_ns", "rand.intn", "uuid.rfc4122",
		"providers.aws.sign_req", "io.jwt.decode_verify":
		return true
	}
	return strings.HasPrefix(name, "net.")
}
