package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/build-service/build-service/internal/testenv"
)

// TestExportAttack: `build-service policy export DIR` runs as root, often
// into a shared place such as /tmp. A user who plants a symlink at DIR, at
// one of its ancestors, inside an existing DIR or in a root-owned link's
// target, or who owns DIR, must not make root write files there (root
// used to follow every one of them).
func TestExportAttack(t *testing.T) {
	testenv.RequireRoot(t)
	const mallory = 65534 // any uid that is neither root nor the daemon's
	cases := []struct {
		name string
		// plant prepares base (root-owned, 0755) and returns the DIR to
		// export to and the directory that must stay empty.
		plant func(t *testing.T, base string) (dir, victim string)
	}{
		{"DIR is a symlink another user planted in a sticky dir", func(t *testing.T, base string) (string, string) {
			sticky := mkdirMode(t, filepath.Join(base, "tmp"), os.ModeSticky|0o777)
			victim := mkdirMode(t, filepath.Join(base, "victim"), 0o755)
			return userSymlink(t, victim, filepath.Join(sticky, "policy"), mallory), victim
		}},
		{"an ancestor of DIR is a symlink another user planted", func(t *testing.T, base string) (string, string) {
			sticky := mkdirMode(t, filepath.Join(base, "tmp"), os.ModeSticky|0o777)
			victim := mkdirMode(t, filepath.Join(base, "victim"), 0o755)
			link := userSymlink(t, victim, filepath.Join(sticky, "stage"), mallory)
			return filepath.Join(link, "policy"), victim
		}},
		{"a root symlink whose target goes through another user's symlink", func(t *testing.T, base string) (string, string) {
			sticky := mkdirMode(t, filepath.Join(base, "tmp"), os.ModeSticky|0o777)
			victim := mkdirMode(t, filepath.Join(base, "victim"), 0o755)
			userLink := userSymlink(t, victim, filepath.Join(sticky, "stage"), mallory)
			rootLink := filepath.Join(base, "etc-policy")
			if err := os.Symlink(userLink, rootLink); err != nil {
				t.Fatal(err)
			}
			return rootLink, victim
		}},
		{"schemas/ inside an existing DIR is another user's symlink", func(t *testing.T, base string) (string, string) {
			dir := mkdirMode(t, filepath.Join(base, "policy"), 0o755)
			if err := os.Chown(dir, mallory, mallory); err != nil {
				t.Fatal(err)
			}
			victim := mkdirMode(t, filepath.Join(base, "victim"), 0o755)
			userSymlink(t, victim, filepath.Join(dir, "schemas"), mallory)
			return dir, victim
		}},
		{"DIR is another user's directory (they could edit the policy root then loads)", func(t *testing.T, base string) (string, string) {
			dir := mkdirMode(t, filepath.Join(base, "policy"), 0o755)
			if err := os.Chown(dir, mallory, mallory); err != nil {
				t.Fatal(err)
			}
			return dir, dir
		}},
		{"DIR's parent is writable by others", func(t *testing.T, base string) (string, string) {
			open := mkdirMode(t, filepath.Join(base, "open"), 0o777)
			return filepath.Join(open, "policy"), open
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := mkdirMode(t, filepath.Join(t.TempDir(), "base"), 0o755)
			if err := os.Chmod(filepath.Dir(base), 0o755); err != nil {
				t.Fatal(err)
			}
			dir, victim := c.plant(t, base)
			err := ExportBundled(dir)
			if !errors.Is(err, ErrUnsafePolicy) {
				t.Errorf("ExportBundled(%s) = %v, want ErrUnsafePolicy", dir, err)
			}
			ents, _ := os.ReadDir(victim)
			for _, e := range ents {
				if e.Type()&os.ModeSymlink == 0 {
					t.Errorf("root wrote %s into %s", e.Name(), victim)
				}
			}
		})
	}
	t.Run("a root-owned symlink to a safe directory still works", func(t *testing.T) {
		base := mkdirMode(t, filepath.Join(t.TempDir(), "base"), 0o755)
		real := mkdirMode(t, filepath.Join(base, "real"), 0o755)
		link := filepath.Join(base, "link")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		if err := ExportBundled(filepath.Join(link, "policy")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(real, "policy", "schemas", "input.json")); err != nil {
			t.Error(err)
		}
	})
}

func mkdirMode(t *testing.T, p string, mode os.FileMode) string {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// userSymlink creates link -> target owned by uid, as if that user had
// planted it.
func userSymlink(t *testing.T, target, link string, uid int) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, uid, uid); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestPolicyDirAttack: an operator policy directory is root's, but a
// subdirectory in it another user owns (or can write) let that user remove
// a root-owned rule file, or flip a symlink between a file of theirs (read)
// and a root-owned one (checked by name afterwards): the loader checked
// the files and the top directory only.
func TestPolicyDirAttack(t *testing.T) {
	testenv.RequireRoot(t)
	const mallory = 65534
	cases := []struct {
		name  string
		plant func(t *testing.T, dir string)
	}{
		{"a subdirectory another user owns (they can delete root's rules in it)", func(t *testing.T, dir string) {
			sub := mkdirMode(t, filepath.Join(dir, "team"), 0o755)
			if err := os.WriteFile(filepath.Join(sub, "extra.rego"), []byte("package build_service.extra\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(sub, mallory, mallory); err != nil {
				t.Fatal(err)
			}
		}},
		{"a group-writable subdirectory", func(t *testing.T, dir string) {
			sub := mkdirMode(t, filepath.Join(dir, "team"), 0o775)
			if err := os.WriteFile(filepath.Join(sub, "extra.rego"), []byte("package build_service.extra\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"a rule file that is another user's symlink to their own file", func(t *testing.T, dir string) {
			other := mkdirMode(t, filepath.Join(filepath.Dir(dir), "mallory"), 0o755)
			evil := filepath.Join(other, "evil.rego")
			if err := os.WriteFile(evil, []byte("package build_service.extra\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(evil, mallory, mallory); err != nil {
				t.Fatal(err)
			}
			userSymlink(t, evil, filepath.Join(dir, "evil.rego"), mallory)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Policy.Directory = filepath.Join(t.TempDir(), "policy")
			if err := ExportBundled(cfg.Policy.Directory); err != nil {
				t.Fatal(err)
			}
			c.plant(t, cfg.Policy.Directory)
			if err := Check(t.Context(), cfg); !errors.Is(err, ErrUnsafePolicy) {
				t.Errorf("Check = %v, want ErrUnsafePolicy", err)
			}
		})
	}
}
