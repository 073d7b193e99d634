package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/build-service/build-service/internal/strictdir"
)

// TestBuildCommandReplaceAttack: build.commands names the binary the daemon
// runs for every caller. One that another user could replace (it is
// theirs, world-writable, or in a directory they can write, like a
// group-writable /opt/tools/bin) would run their code as everyone who asks
// for a build; the daemon only warned when a command was missing and
// accepted these. CheckCommandsSafe (fatal at start and on reload) refuses
// them.
func TestBuildCommandReplaceAttack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another uid")
	}
	const mallory = 65534
	cases := []struct {
		name  string
		plant func(t *testing.T, base string) string
	}{
		{"the make binary belongs to another user", func(t *testing.T, base string) string {
			p := exe(t, filepath.Join(base, "make"), 0o755)
			if err := os.Chown(p, mallory, mallory); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"the make binary is world-writable", func(t *testing.T, base string) string {
			return exe(t, filepath.Join(base, "make"), 0o777)
		}},
		{"the make binary sits in a group-writable tools directory", func(t *testing.T, base string) string {
			dir := filepath.Join(base, "tools")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o775); err != nil {
				t.Fatal(err)
			}
			return exe(t, filepath.Join(dir, "make"), 0o755)
		}},
		{"the make path is another user's symlink to the real make", func(t *testing.T, base string) string {
			real := exe(t, filepath.Join(base, "real-make"), 0o755)
			link := filepath.Join(base, "make")
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(link, mallory, mallory); err != nil {
				t.Fatal(err)
			}
			return link
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "base")
			if err := os.Chmod(filepath.Dir(base), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(base, 0o755); err != nil {
				t.Fatal(err)
			}
			b := Build{Commands: map[string]string{"make": c.plant(t, base)}}
			if err := b.CheckCommandsSafe(); !errors.Is(err, strictdir.ErrUnsafe) {
				t.Errorf("CheckCommandsSafe = %v, want strictdir.ErrUnsafe", err)
			}
		})
	}
	t.Run("allowed: the sample config's /usr/bin/make and a missing binary", func(t *testing.T) {
		b := Build{Commands: map[string]string{"make": Default().Build.Commands["make"], "gone": "/nonexistent/bin/make"}}
		if err := b.CheckCommandsSafe(); err != nil {
			t.Error(err)
		}
	})
}

func exe(t *testing.T, p string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}
