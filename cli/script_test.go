package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestScripts runs the golden scripts in testdata/script: each gives
// build-cli's arguments and environment, the exact request line expected
// on the wire (optional), the exact lines the daemon answers with, and
// build-cli's exit code, stdout and stderr. SOCKET in stderr stands for the
// test socket's path.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			s := parseScript(t, file)
			got := make(chan []byte, 1)
			d := startDaemon(t, func(c *daemonConn) {
				got <- c.Raw
				if c.Err != nil {
					t.Errorf("the strict decoder refused build-cli's request: %v", c.Err)
					return
				}
				c.sendRaw(s["daemon"])
			})
			env := map[string]string{}
			for _, kv := range lines(s["env"]) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			res := runCLI(t, append([]string{"--socket", d.path}, lines(s["args"])...), env, nil)
			raw := <-got
			if want, ok := s["request"]; ok && string(raw) != want {
				t.Errorf("request on the wire\n got %s\nwant %s", raw, want)
			}
			wantCode, err := strconv.Atoi(strings.TrimSpace(s["exit"]))
			if err != nil {
				t.Fatalf("%s: bad exit section: %v", file, err)
			}
			if res.code != wantCode {
				t.Errorf("exit %d, want %d", res.code, wantCode)
			}
			if res.stdout != s["stdout"] {
				t.Errorf("stdout\n got %q\nwant %q", res.stdout, s["stdout"])
			}
			if want := strings.ReplaceAll(s["stderr"], "SOCKET", d.path); res.stderr != want {
				t.Errorf("stderr\n got %q\nwant %q", res.stderr, want)
			}
		})
	}
}

// parseScript splits a txtar-like file into its "-- name --" sections.
func parseScript(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	name := ""
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --\n") {
			name = strings.TrimSuffix(strings.TrimPrefix(l, "-- "), " --\n")
			sections[name] += ""
			continue
		}
		if name != "" {
			sections[name] += l
		}
	}
	for _, must := range []string{"args", "exit", "stdout", "stderr"} {
		if _, ok := sections[must]; !ok {
			t.Fatalf("%s: no -- %s -- section", file, must)
		}
	}
	return sections
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
