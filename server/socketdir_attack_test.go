package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/build-service/build-service/internal/strictdir"
	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/server"
)

// TestSocketDirAttack: the daemon used to listen in any existing socket
// directory. One another user owns (they created /tmp/bs/run before the
// operator started the daemon, say) let them rename the daemon's socket
// away and bind their own: every client then sent them its request, env
// values included, and printed their fake output (reproduced). They could
// also swap the fresh socket for a symlink before root's chown/chmod, which
// follow it (/etc/shadow -> group socket_group, 0660).
func TestSocketDirAttack(t *testing.T) {
	testenv.RequireRoot(t)
	const mallory = 65534
	cases := []struct {
		name  string
		plant func(t *testing.T, base string) string // returns the socket path
	}{
		{"the socket directory belongs to another user", func(t *testing.T, base string) string {
			dir := filepath.Join(base, "run")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, mallory, mallory); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "build.sock")
		}},
		{"the socket directory is another user's symlink in sticky /tmp", func(t *testing.T, base string) string {
			sticky := filepath.Join(base, "tmp")
			if err := os.Mkdir(sticky, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(sticky, os.ModeSticky|0o777); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(base, "theirs")
			if err := os.Mkdir(target, 0o755); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(sticky, "run")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(link, mallory, mallory); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(link, "build.sock")
		}},
		{"the socket directory is group-writable", func(t *testing.T, base string) string {
			dir := filepath.Join(base, "run")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o775); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "build.sock")
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
			path := c.plant(t, base)
			l, err := server.ListenPath(server.SocketSpec{Path: path, Mode: 0o660})
			if err == nil {
				l.Close()
			}
			if !errors.Is(err, strictdir.ErrUnsafe) {
				t.Errorf("ListenPath(%s) = %v, want strictdir.ErrUnsafe", path, err)
			}
		})
	}
	t.Run("allowed: a missing socket directory under a root-owned sticky directory", func(t *testing.T) {
		base := filepath.Join(t.TempDir(), "tmp")
		if err := os.Chmod(filepath.Dir(base), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(base, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(base, os.ModeSticky|0o777); err != nil {
			t.Fatal(err)
		}
		l, err := server.ListenPath(server.SocketSpec{Path: filepath.Join(base, "bs", "run", "build.sock"), Mode: 0o660})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	})
}
