package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCommandsNamesACommandThatCannotRunOnThisHost(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	if err := os.WriteFile(private, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, want string
	}{
		{"a binary that exists and everyone may run is fine", "/bin/sh", ""},
		{"a missing binary is named with its key", filepath.Join(dir, "nomake"), "build.commands.make: stat " + filepath.Join(dir, "nomake") + ": no such file or directory"},
		{"a directory is not a command", dir, "build.commands.make: " + dir + " is not a regular file"},
		{"a binary only its owner may run is refused", private, "build.commands.make: " + private + " is not executable by other users (mode 0700), so builds could not run it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := Build{Commands: map[string]string{"make": c.path}}
			err := b.CheckCommands()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("CheckCommands() = %q, want %q", got, c.want)
			}
			if strings.Contains(got, "\n") && !strings.Contains(c.want, "\n") {
				t.Errorf("not one line: %q", got)
			}
		})
	}
}
