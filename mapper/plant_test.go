package mapper

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/protocol"
)

// Attack: the workspace root is a world-writable sticky directory (like
// /tmp) and alice's workspace does not exist yet. bob plants a symlink
// where alice's workspace would be, pointing at a root-owned directory:
// the real path passes the StrictModes walk, so only the symlink's owner
// can tell that bob chose where alice's builds run.
func TestASymlinkPlantedByAnotherUserIsNotAWorkspace(t *testing.T) {
	alice, bob := testenv.EnsureUsers(t)
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(filepath.Dir(root), 0o755))
	must(os.Chmod(root, 0o755))
	sticky := filepath.Join(root, "sticky")
	must(os.Mkdir(sticky, 0o755))
	must(os.Chmod(sticky, 0o777|os.ModeSticky))
	target := filepath.Join(root, "root-owned")
	must(os.Mkdir(target, 0o755))

	m, err := New(config.Build{WorkspaceRoot: sticky, PathMapping: config.PathMapping{HostTemplate: "{workspace_root}/{user}"}})
	must(err)
	asAlice := Caller{Name: alice.Name, UID: alice.UID, GID: alice.GID, Groups: alice.Groups}
	planted := filepath.Join(sticky, alice.Name)

	for _, c := range []struct {
		name  string
		owner int
		safe  bool
	}{
		{"a symlink bob planted is refused", bob.UID, false},
		{"a symlink alice made herself is hers to make", alice.UID, true},
		{"a symlink root made is the administrator's", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(planted)
			must(os.Symlink(target, planted))
			must(os.Lchown(planted, c.owner, c.owner))
			f, err := m.Map(context.Background(), asAlice, protocol.Request{Command: "make", Cwd: planted})
			must(err)
			if f.Workspace.Safe != c.safe {
				t.Fatalf("safe = %v (%q), want %v", f.Workspace.Safe, f.Workspace.UnsafeReason, c.safe)
			}
			if !c.safe {
				want := planted + " is a symlink owned by uid " + strconv.Itoa(bob.UID) + ", not by root or you"
				if f.Workspace.UnsafeReason != want {
					t.Errorf("reason %q, want %q", f.Workspace.UnsafeReason, want)
				}
			}
		})
	}
}
