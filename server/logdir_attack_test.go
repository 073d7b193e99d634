package server

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/internal/strictdir"
)

// TestLogDirSymlinkAttack: with logging.directory in a place another user
// controls (a directory they own, or a name they pre-created in /tmp), they
// planted build-service.log -> /root/.bashrc (or any file) and the root
// daemon appended its log lines there, arguments of their own requests
// included ("$(...)" survives the quoting). NewLogger now refuses such a
// directory before opening anything.
func TestLogDirSymlinkAttack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another uid")
	}
	base := filepath.Join(t.TempDir(), "base")
	if err := os.Chmod(filepath.Dir(base), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(base, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		plant func(t *testing.T) string
	}{
		{"build-service.log is a symlink in a log directory another user owns", func(t *testing.T) string {
			dir := filepath.Join(base, "userlog")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, filepath.Join(dir, LogFileName)); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{dir, filepath.Join(dir, LogFileName)} {
				if err := os.Lchown(p, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			return dir
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.plant(t)
			log, closer, err := NewLogger(config.Logging{Directory: dir, Level: "info", MaxSizeMB: 1, MaxBackups: 1}, io.Discard)
			if err == nil {
				log.Info().Msg("INJECTED")
				closer.Close()
			}
			if !errors.Is(err, strictdir.ErrUnsafe) {
				t.Errorf("NewLogger = %v, want strictdir.ErrUnsafe", err)
			}
			if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
				t.Errorf("root wrote through the planted symlink: %q", got)
			}
		})
	}
}
