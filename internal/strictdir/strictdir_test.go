package strictdir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

const mallory = 65534 // neither root nor the test's uid

// TestLogDirAttack: the root daemon appends its log and decision log to
// files in a configured directory by name. Each case is a way another user
// could make that name lead to a file of their choosing; before the check,
// the daemon appended to (or created) the symlink's target as root.
func TestLogDirAttack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another uid")
	}
	cases := []struct {
		name  string
		plant func(t *testing.T, base string) (dir string)
	}{
		{"the log directory is another user's directory", func(t *testing.T, base string) string {
			d := mkdir(t, filepath.Join(base, "log"), 0o755)
			chown(t, d)
			return d
		}},
		{"the log directory is another user's symlink in sticky /tmp", func(t *testing.T, base string) string {
			sticky := mkdir(t, filepath.Join(base, "tmp"), os.ModeSticky|0o777)
			target := mkdir(t, filepath.Join(base, "etc"), 0o755)
			return symlink(t, target, filepath.Join(sticky, "log"))
		}},
		{"an ancestor of a missing log directory is another user's symlink", func(t *testing.T, base string) string {
			sticky := mkdir(t, filepath.Join(base, "tmp"), os.ModeSticky|0o777)
			target := mkdir(t, filepath.Join(base, "etc"), 0o755)
			return filepath.Join(symlink(t, target, filepath.Join(sticky, "bs")), "log")
		}},
		{"a missing log directory under another user's directory", func(t *testing.T, base string) string {
			d := mkdir(t, filepath.Join(base, "home"), 0o755)
			chown(t, d)
			return filepath.Join(d, "log")
		}},
		{"the log directory is group-writable", func(t *testing.T, base string) string {
			return mkdir(t, filepath.Join(base, "log"), 0o775)
		}},
		{"an ancestor is writable by a user's group (gid >= 1000)", func(t *testing.T, base string) string {
			team := mkdir(t, filepath.Join(base, "team"), 0o775)
			if err := os.Chown(team, 0, 1000); err != nil {
				t.Fatal(err)
			}
			return mkdir(t, filepath.Join(team, "log"), 0o755)
		}},
		{"the log directory is sticky and world-writable itself", func(t *testing.T, base string) string {
			return mkdir(t, filepath.Join(base, "log"), os.ModeSticky|0o777)
		}},
		{"an ancestor is world-writable without the sticky bit", func(t *testing.T, base string) string {
			open := mkdir(t, filepath.Join(base, "open"), 0o777)
			return mkdir(t, filepath.Join(open, "log"), 0o755)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.plant(t, base(t))
			if err := Check(dir); !errors.Is(err, ErrUnsafe) {
				t.Errorf("Check(%s) = %v, want ErrUnsafe", dir, err)
			}
		})
	}
	ok := []struct {
		name  string
		plant func(t *testing.T, base string) string
	}{
		{"a root-owned directory", func(t *testing.T, base string) string { return mkdir(t, filepath.Join(base, "log"), 0o750) }},
		{"a missing directory under sticky /tmp", func(t *testing.T, base string) string {
			return filepath.Join(mkdir(t, filepath.Join(base, "tmp"), os.ModeSticky|0o777), "log")
		}},
		{"an ancestor writable by a system group (Ubuntu's /var/log, root:syslog 0775)", func(t *testing.T, base string) string {
			varlog := mkdir(t, filepath.Join(base, "var-log"), 0o775)
			if err := os.Chown(varlog, 0, 4); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(varlog, "build-service")
		}},
		{"a root-owned symlink to a root-owned directory", func(t *testing.T, base string) string {
			target := mkdir(t, filepath.Join(base, "var-log"), 0o755)
			link := filepath.Join(base, "log")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}},
	}
	for _, c := range ok {
		t.Run("allowed: "+c.name, func(t *testing.T) {
			if dir := c.plant(t, base(t)); Check(dir) != nil {
				t.Errorf("Check(%s) = %v", dir, Check(dir))
			}
		})
	}
}

func base(t *testing.T) string {
	b := filepath.Join(t.TempDir(), "base")
	if err := os.Chmod(filepath.Dir(b), 0o755); err != nil {
		t.Fatal(err)
	}
	return mkdir(t, b, 0o755)
}

func mkdir(t *testing.T, p string, mode os.FileMode) string {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func chown(t *testing.T, p string) {
	t.Helper()
	if err := os.Lchown(p, mallory, mallory); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	chown(t, link)
	return link
}
