package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// A misspelt or misplaced key must stop the daemon with the key and its
// line, never be ignored (an ignored "max_sec" would leave builds uncapped).
func TestDecodeRefuses(t *testing.T) {
	cases := []struct {
		name string
		toml string
		want string
	}{
		{"a misspelt key names the key, its line and the key meant",
			"schema_version = \"1\"\n\n[build.timeouts]\ndefualt_sec = 5\n",
			`config.toml:4: unknown key "build.timeouts.defualt_sec" (did you mean "build.timeouts.default_sec"?)`},
		{"a key in the wrong table points at the table it belongs in",
			"[build]\nkill_grace_sec = 3\n",
			`config.toml:2: unknown key "build.kill_grace_sec" (did you mean "build.timeouts.kill_grace_sec"?)`},
		{"a key nothing resembles gets no suggestion",
			"[service]\nfrobnicate = true\n",
			`config.toml:2: unknown key "service.frobnicate"`},
		{"an unknown table is named as a table",
			"[servce]\nsocket_path = \"/x\"\n",
			`config.toml:1: unknown table "servce" (did you mean "service"?)`},
		{"an unknown key in an array of tables is found",
			"[[build.path_mappings]]\ncontainer_template = \"/c\"\nhost_templat = \"/h/{user}\"\n",
			`config.toml:3: unknown key "build.path_mappings.host_templat" (did you mean "build.path_mappings.host_template"?)`},
		{"an unknown dotted key at the top level is found",
			"logging.lvl = \"info\"\n",
			`config.toml:1: unknown key "logging.lvl" (did you mean "logging.level"?)`},
		{"every unknown key is reported, in line order",
			"[logging]\nlevl = \"x\"\n[service]\nsocket = \"/x\"\n",
			"config.toml:2: unknown key \"logging.levl\" (did you mean \"logging.level\"?)\nconfig.toml:4: unknown key \"service.socket\""},
		{"a number written as a string names the key and the types",
			"[build.timeouts]\ndefault_sec = \"600\"\n",
			`config.toml:2: build.timeouts.default_sec: wrong type: want an integer, got a TOML string`},
		{"a float where an integer belongs is refused",
			"[build.timeouts]\n\nmax_sec = 1.5\n",
			`config.toml:3: build.timeouts.max_sec: wrong type: want an integer, got a TOML float`},
		{"a single string where a list belongs is refused",
			"[build.environment]\nallow = \"CFLAGS\"\n",
			`config.toml:2: build.environment.allow: wrong type: want an array of strings, got a TOML string`},
		{"a command path that is not a string is refused",
			"[build.commands]\nmake = 1\n",
			`config.toml:2: build.commands.make: wrong type: want a string, got a TOML integer`},
		{"a socket mode written as a TOML octal number shows the string to write",
			"[service]\nsocket_mode = 0o660\n",
			`config.toml:2: service.socket_mode: wrong type: want a string such as "0660", got a TOML integer`},
		{"a memory limit written as a number shows the string to write",
			"[build.limits]\nmemory_max = 536870912\n",
			`config.toml:2: build.limits.memory_max: wrong type: want a string such as "8G" or "536870912", got a TOML integer`},
		{"a table written as a string is refused",
			"[build]\ncommands = \"/usr/bin/make\"\n",
			`config.toml:2: build.commands: wrong type: want a table of strings, got a TOML string`},
		{"a boolean written as a string is refused",
			"[logging]\nconsole = \"yes\"\n",
			`config.toml:2: logging.console: wrong type: want a boolean (true or false), got a TOML string`},
		{"no_new_privs written as a number is refused",
			"[build.limits]\nno_new_privs = 0\n",
			`config.toml:2: build.limits.no_new_privs: wrong type: want a boolean (true or false), got a TOML integer`},
		{"an integer too large for 64 bits is refused",
			"[build.limits]\npids_max = 99999999999999999999\n",
			`config.toml:2: build.limits.pids_max: decimal number is too large to fit in a 64-bit signed integer`},
		{"an unclosed table header is a syntax error with line and column",
			"[build\n",
			`config.toml:1: syntax error at column 7: expected ']' to close table name`},
		{"a key written twice is refused",
			"[logging]\nlevel = \"info\"\nlevel = \"debug\"\n",
			`config.toml:3: syntax error at column 1: key level is already defined`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml), "config.toml")
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("wrong message\n got: %s\nwant: %s", got, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
		})
	}
}

// go-toml merges a decoded table into an existing map: without care, a
// file listing only cmake would still allow the default make.
func TestListsAndTablesInAFileReplaceTheDefaults(t *testing.T) {
	doc := `
[build.commands]
cmake = "/usr/bin/cmake"

[build.environment]
allow = ["CFLAGS"]

[build.identity]
deny_groups = []
`
	c, err := Parse([]byte(doc), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"cmake": "/usr/bin/cmake"}; !reflect.DeepEqual(c.Build.Commands, want) {
		t.Errorf("commands = %v, want only %v", c.Build.Commands, want)
	}
	if _, ok := c.Build.Command("make"); ok {
		t.Errorf("make is still allowed although the file lists only cmake")
	}
	if want := []string{"CFLAGS"}; !reflect.DeepEqual(c.Build.Environment.Allow, want) {
		t.Errorf("allow = %v, want %v", c.Build.Environment.Allow, want)
	}
	if len(c.Build.Identity.DenyGroups) != 0 {
		t.Errorf("deny_groups = %v, want empty as written", c.Build.Identity.DenyGroups)
	}
}

func TestAbsentKeysKeepTheirDefaults(t *testing.T) {
	c, err := Parse([]byte("[build.timeouts]\nkill_grace_sec = 1\n"), "config.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Build.Timeouts.KillGraceSec = 1
	want.src = c.src
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if c.Build.Timeouts.KillGrace().Seconds() != 1 {
		t.Errorf("KillGrace() = %v", c.Build.Timeouts.KillGrace())
	}
}

func TestEmptyFileIsTheDefaults(t *testing.T) {
	c, err := Parse(nil, "empty.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.src = nil
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("empty file gave %+v", c)
	}
}

func TestKeyLinesFindsEveryWayOfWritingAKey(t *testing.T) {
	doc := `schema_version = "1"
[service]
socket_path = "/x"
[build]
timeouts.max_sec = 5
path_mappings = [
  {container_template = "/a", host_template = "/b/{user}"},
  {container_template = "/c", host_template = "/d/{user}"},
]
[build.commands]
make = "/usr/bin/make"
[[build.sandbox.x]]
y = 1
[[build.sandbox.x]]
y = 2
`
	lines, err := keyLines([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"schema_version":                            1,
		"service":                                   2,
		"service.socket_path":                       3,
		"build.timeouts":                            5,
		"build.timeouts.max_sec":                    5,
		"build.path_mappings":                       6,
		"build.path_mappings[0]":                    7,
		"build.path_mappings[1].host_template":      8,
		"build.commands":                            10,
		"build.commands.make":                       11,
		"build.sandbox.x[0].y":                      13,
		"build.sandbox.x[1]":                        14,
		"build.sandbox.x[1].y":                      15,
		"build.path_mappings[0].container_template": 7,
	}
	for k, n := range want {
		if lines[k] != n {
			t.Errorf("line of %q = %d, want %d", k, lines[k], n)
		}
	}
}

func TestSuggestOnlyNearbyKeys(t *testing.T) {
	cases := map[string]string{
		"build.timeouts.max_secs":     "build.timeouts.max_sec",
		"logging.max_size":            "logging.max_size_mb",
		"service.socketpath":          "service.socket_path",
		"build.limits.deny_groups":    "build.identity.deny_groups",
		"totally.unrelated.something": "",
	}
	for in, want := range cases {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAFileOfUnknownKeysIsReportedInBrief(t *testing.T) {
	var doc strings.Builder
	for i := range 30 {
		fmt.Fprintf(&doc, "k%d = 1\n", i)
	}
	_, err := Parse([]byte(doc.String()), "config.toml")
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxUnknownReported+1 {
		t.Fatalf("%d lines, want %d:\n%v", len(lines), maxUnknownReported+1, err)
	}
	if want := `config.toml:20: ... and 10 more unknown keys`; lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
	}
}

func TestNoKnownKeyIsTooLongToBeSuggested(t *testing.T) {
	for k := range knownKeys() {
		if len(k) > maxSuggestLen {
			t.Errorf("%q is longer than maxSuggestLen (%d)", k, maxSuggestLen)
		}
	}
}
