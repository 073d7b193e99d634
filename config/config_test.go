package config

import (
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
}

// The sample is what operators copy; Default() is what they get without
// it. The two must say the same thing, except where listed here.
func TestSampleLoadsAndMatchesDefaults(t *testing.T) {
	c, err := Load("config.toml")
	if err != nil {
		t.Fatalf("the sample config does not load: %v", err)
	}
	if c.Path != "config.toml" {
		t.Errorf("Path = %q, want config.toml", c.Path)
	}
	want := Default()
	// Intended differences: the sample names the group an installation
	// creates; the defaults run on a machine without it.
	want.Service.SocketGroup = "build-users"

	want.Path, want.src = c.Path, c.src
	if !reflect.DeepEqual(c, want) {
		gotJ, _ := json.MarshalIndent(c, "", " ")
		wantJ, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("sample and Default() drifted apart\nsample:  %s\ndefault: %s", gotJ, wantJ)
	}
}

// Every key of the schema is in the sample, set to its default or (where a
// value cannot be shown without changing behaviour) in a comment.
func TestSampleShowsEveryKey(t *testing.T) {
	data, err := os.ReadFile("config.toml")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := keyLines(data)
	if err != nil {
		t.Fatal(err)
	}
	commented := map[string]string{
		"build.path_mappings":                    "# [[build.path_mappings]]",
		"build.path_mappings.container_template": "# container_template = ",
		"build.path_mappings.host_template":      "# host_template = ",
		"build.path_mappings.mode":               "# mode = ",
		"build.path_mapping.mode":                "# mode: ",
	}
	var missing []string
	for k := range knownKeys() {
		if _, ok := lines[k]; ok {
			continue
		}
		if c, ok := commented[k]; ok && strings.Contains(string(data), c) {
			continue
		}
		missing = append(missing, k)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("keys missing from the sample config.toml: %v", missing)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()

	t.Run("a missing file is an error naming the path, not ErrInvalid", func(t *testing.T) {
		p := filepath.Join(dir, "nope.toml")
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), p) || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("got %v, want a not-exist error naming %s", err, p)
		}
		if errors.Is(err, ErrInvalid) {
			t.Errorf("a read error matches ErrInvalid")
		}
	})
	t.Run("a directory is an error naming the path", func(t *testing.T) {
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Fatalf("got %v, want an error naming %s", err, dir)
		}
	})
	t.Run("a bad key is reported with the full path and line", func(t *testing.T) {
		p := filepath.Join(dir, "bad.toml")
		if err := os.WriteFile(p, []byte("[logging]\n\nlevel = \"nope\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		want := p + `:3: logging.level: "nope" must be one of debug, info, warn, error`
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	})
}

// The golden file shows what an operator sees for a file with many
// problems at once: every one of them, each on its own line.
func TestGoldenEverythingWrong(t *testing.T) {
	_, err := Load("testdata/everything-wrong.toml")
	if err == nil {
		t.Fatal("accepted")
	}
	got := err.Error() + "\n"
	golden := "testdata/everything-wrong.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, rerr := os.ReadFile(golden)
	if rerr != nil {
		t.Fatalf("%v (run go test ./config -run Golden -update)", rerr)
	}
	if got != string(want) {
		t.Errorf("messages differ from %s (go test ./config -run Golden -update to accept)\n got:\n%s\nwant:\n%s", golden, got, want)
	}
}

func writeConfig(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromEnvAndFlagPrecedence(t *testing.T) {
	dir := t.TempDir()
	flagFile := writeConfig(t, dir, "flag.toml", "[build.timeouts]\nkill_grace_sec = 1\n")
	envFile := writeConfig(t, dir, "env.toml", "[build.timeouts]\nkill_grace_sec = 2\n")
	defFile := writeConfig(t, dir, "default.toml", "[build.timeouts]\nkill_grace_sec = 3\n")
	noFile := filepath.Join(dir, "missing.toml")

	cases := []struct {
		name     string
		flag     string
		env      map[string]string
		defPath  string
		wantPath string
		wantKill int
		wantLvl  string
	}{
		{"the flag wins over BUILD_SERVICE_CONFIG", flagFile, map[string]string{EnvConfig: envFile}, defFile, flagFile, 1, "info"},
		{"BUILD_SERVICE_CONFIG is used without the flag", "", map[string]string{EnvConfig: envFile}, defFile, envFile, 2, "info"},
		{"an empty BUILD_SERVICE_CONFIG counts as unset", "", map[string]string{EnvConfig: ""}, defFile, defFile, 3, "info"},
		{"the default path is used when it exists", "", nil, defFile, defFile, 3, "info"},
		{"the built-in defaults apply when the default path does not exist", "", nil, noFile, "", 5, "info"},
		{"BUILD_SERVICE_LOG_LEVEL overrides the file's level", flagFile, map[string]string{EnvLogLevel: "debug"}, defFile, flagFile, 1, "debug"},
		{"BUILD_SERVICE_LOG_LEVEL overrides the built-in level", "", map[string]string{EnvLogLevel: "error"}, noFile, "", 5, "error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := fromEnvAndFlag(tc.flag, func(k string) string { return tc.env[k] }, tc.defPath)
			if err != nil {
				t.Fatal(err)
			}
			if c.Path != tc.wantPath || c.Build.Timeouts.KillGraceSec != tc.wantKill || c.Logging.Level != tc.wantLvl {
				t.Errorf("got path %q kill_grace %d level %q; want %q %d %q",
					c.Path, c.Build.Timeouts.KillGraceSec, c.Logging.Level, tc.wantPath, tc.wantKill, tc.wantLvl)
			}
		})
	}
}

func TestFromEnvAndFlagRefuses(t *testing.T) {
	dir := t.TempDir()
	noFile := filepath.Join(dir, "missing.toml")
	badFile := writeConfig(t, dir, "bad.toml", "[servce]\n")
	cases := []struct {
		name string
		flag string
		env  map[string]string
		want string
	}{
		{"a missing file named by the flag is an error, not the defaults", noFile, nil,
			"read config: open " + noFile + ": no such file or directory"},
		{"a missing file named by BUILD_SERVICE_CONFIG is an error, not the defaults", "", map[string]string{EnvConfig: noFile},
			"read config: open " + noFile + ": no such file or directory"},
		{"an invalid log level in the environment is refused by name", "", map[string]string{EnvLogLevel: "trace"},
			`BUILD_SERVICE_LOG_LEVEL="trace": must be one of debug, info, warn, error`},
		{"a broken file named by the flag is refused with its line", badFile, nil,
			badFile + `:1: unknown table "servce" (did you mean "service"?)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fromEnvAndFlag(tc.flag, func(k string) string { return tc.env[k] }, noFile)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

// The exported function reads the real environment.
func TestFromEnvAndFlagReadsTheProcessEnvironment(t *testing.T) {
	dir := t.TempDir()
	envFile := writeConfig(t, dir, "env.toml", "[build.timeouts]\nkill_grace_sec = 2\n")
	t.Setenv(EnvConfig, envFile)
	t.Setenv(EnvLogLevel, "warn")
	c, err := FromEnvAndFlag("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != envFile || c.Logging.Level != "warn" {
		t.Errorf("got path %q level %q", c.Path, c.Logging.Level)
	}
}

func TestParseSize(t *testing.T) {
	ok := []struct {
		in   string
		want int64
	}{
		{"", 0}, {"0", 0}, {"1", 1}, {"1048576", 1 << 20},
		{"512K", 512 << 10}, {"512k", 512 << 10}, {"512M", 512 << 20}, {"8G", 8 << 30}, {"8g", 8 << 30}, {"2T", 2 << 40},
		{"8388607T", 8388607 << 40},
	}
	for _, tc := range ok {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	bad := []string{"G", "-1", "1.5G", "8GB", "8 G", " 8G", "8GiB", "max", "0x10", "8388608T", "99999999999999999999"}
	for _, in := range bad {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestServiceMode(t *testing.T) {
	cases := map[string]os.FileMode{"0660": 0o660, "660": 0o660, "0o600": 0o600, "0600": 0o600, "0": 0, "bogus": 0o600, "0666x": 0o600, "4777": 0o600}
	for in, want := range cases {
		if got := (Service{SocketMode: in}).Mode(); got != want {
			t.Errorf("Mode(%q) = %#o, want %#o", in, got, want)
		}
	}
}

func TestHelpers(t *testing.T) {
	c := Default()
	if d, m := c.TimeoutCaps(); d != 600 || m != 3600 {
		t.Errorf("TimeoutCaps() = %d, %d", d, m)
	}
	if got := c.Build.Timeouts.Max().String(); got != "1h0m0s" {
		t.Errorf("Max() = %s", got)
	}
	if got := c.Build.Limits.MemoryMaxBytes(); got != 8<<30 {
		t.Errorf("MemoryMaxBytes() = %d", got)
	}
	if !c.Build.Limits.NoNewPrivsEnabled() {
		t.Errorf("no_new_privs is off by default")
	}
	off := false
	if (Limits{NoNewPrivs: &off}).NoNewPrivsEnabled() {
		t.Errorf("no_new_privs = false is not honoured")
	}
	if !(Limits{}).NoNewPrivsEnabled() {
		t.Errorf("an unset no_new_privs must mean on")
	}
	if p, ok := c.Build.Command("make"); !ok || p != "/usr/bin/make" {
		t.Errorf("Command(make) = %q, %v", p, ok)
	}
	for _, tc := range []struct{ dir, dl, want string }{
		{"/var/log/bs", "decisions.log", "/var/log/bs/decisions.log"},
		{"/var/log/bs", "/elsewhere/d.log", "/elsewhere/d.log"},
		{"/var/log/bs", "", ""},
		{"", "decisions.log", ""},
	} {
		if got := (Logging{Directory: tc.dir, DecisionLog: tc.dl}).DecisionLogPath(); got != tc.want {
			t.Errorf("DecisionLogPath(%q, %q) = %q, want %q", tc.dir, tc.dl, got, tc.want)
		}
	}
	if got := c.Service.RequestTimeout().Seconds(); got != 5 {
		t.Errorf("RequestTimeout() = %v", got)
	}
	if got := c.Service.ShutdownGrace().Seconds(); got != 30 {
		t.Errorf("ShutdownGrace() = %v", got)
	}
}

// The engine hands the config to Rego as data.config; its names there must
// be the TOML names operators know.
func TestJSONUsesTheTOMLNames(t *testing.T) {
	b, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	build, _ := m["build"].(map[string]any)
	timeouts, _ := build["timeouts"].(map[string]any)
	if timeouts["kill_grace_sec"] != float64(5) {
		t.Errorf("data.config.build.timeouts.kill_grace_sec missing from %s", b)
	}
	if _, ok := m["Path"]; ok {
		t.Errorf("the file path leaks into the JSON form: %s", b)
	}
}

func TestDefaultReturnsAFreshCopy(t *testing.T) {
	a := Default()
	a.Build.Commands["sh"] = "/bin/sh"
	a.Build.Environment.Allow[0] = "LD_PRELOAD"
	*a.Build.Limits.NoNewPrivs = false
	b := Default()
	if _, ok := b.Build.Commands["sh"]; ok || b.Build.Environment.Allow[0] != "CC" || !*b.Build.Limits.NoNewPrivs {
		t.Fatal("Default() shares state between calls")
	}
}
