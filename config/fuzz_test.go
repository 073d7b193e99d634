package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// Parse reads files an operator wrote, but a panic or an error without a
// location would still cost a reload or hide the problem: whatever the
// input, Parse returns a valid config or an error naming where it is wrong.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"config.toml", "testdata/everything-wrong.toml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[build]\npath_mappings = [{container_template = \"/a\", host_template = \"/b/{user}\"}]\n"))
	f.Add([]byte("[[build.path_mappings]]\ncontainer_template = \"/c\"\n[[build.path_mappings]]\nmode = 1\n"))
	f.Add([]byte("a.b.c = {d = [1, {e = 2}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned a config that does not validate: %v", err)
		}
	})
}
