package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/build-service/build-service/internal/strictdir"
	"github.com/build-service/build-service/internal/testenv"
)

// TestConfigFileAttack: the config decides deny_groups (drop it and a
// docker-group build is root-equivalent), the workspaces and the policy
// directory. The daemon loaded it from anywhere, at start and on every
// SIGHUP: a config another user could write, or swap through its
// directory, was theirs. It is now held to the policy directory's rule.
func TestConfigFileAttack(t *testing.T) {
	testenv.RequireRoot(t)
	const mallory = 65534
	const cfgText = "schema_version = \"1\"\n"
	cases := []struct {
		name  string
		plant func(t *testing.T, base string) string
	}{
		{"the config file belongs to another user", func(t *testing.T, base string) string {
			p := writeCfg(t, filepath.Join(base, "config.toml"), cfgText, 0o644)
			if err := os.Chown(p, mallory, mallory); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"the config file is world-writable", func(t *testing.T, base string) string {
			return writeCfg(t, filepath.Join(base, "config.toml"), cfgText, 0o666)
		}},
		{"the config's directory belongs to another user (they can swap the file)", func(t *testing.T, base string) string {
			dir := filepath.Join(base, "etc")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			p := writeCfg(t, filepath.Join(dir, "config.toml"), cfgText, 0o644)
			if err := os.Chown(dir, mallory, mallory); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"the config is another user's symlink to a root-owned file", func(t *testing.T, base string) string {
			real := writeCfg(t, filepath.Join(base, "real.toml"), cfgText, 0o644)
			link := filepath.Join(base, "config.toml")
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
			p := c.plant(t, base)
			if _, err := loadConfig(p, ""); !errors.Is(err, strictdir.ErrUnsafe) {
				t.Errorf("loadConfig(%s) = %v, want strictdir.ErrUnsafe", p, err)
			}
		})
	}
	t.Run("allowed: a root-owned 0644 config in a root-owned directory", func(t *testing.T) {
		p := writeCfg(t, filepath.Join(t.TempDir(), "config.toml"), cfgText, 0o644)
		if _, err := loadConfig(p, ""); err != nil {
			t.Fatal(err)
		}
	})
}

func writeCfg(t *testing.T, p, text string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}
