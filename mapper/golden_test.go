package mapper

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/facts")

// The golden files show the whole facts document for a few requests, with
// the temporary directory written as $ROOT: the shape the engine and the
// policies read.
func TestFactsGolden(t *testing.T) {
	w := newAttackWorld(t)
	cases := []struct {
		name string
		cwd  string
		args []string
		env  map[string]string
	}{
		{"plain-build-in-a-subdirectory", "$WS/a", []string{"-j4", "all", "CFLAGS=-O2"}, nil},
		{"attack-leave-the-workspace", "$WS", []string{"-kC..", "-f", "/etc/passwd", "X!=id"}, map[string]string{"MAKEFLAGS": "s -- MAKEFILES=/etc/x"}},
		{"refused-ambiguous-option", "$WS", []string{"--d", "all"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := w.mapReq(t, c.cwd, c.args, c.env)
			got, err := json.MarshalIndent(f, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = []byte(strings.ReplaceAll(string(got), w.root, "$ROOT") + "\n")
			path := filepath.Join("testdata", "facts", c.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("facts differ from %s:\n%s", path, got)
			}
		})
	}
}
