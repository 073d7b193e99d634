package mapper

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/protocol"
)

// The caller's view: paths are resolved with the caller's fsuid, fsgid and
// groups, so the facts (and the denial built from them) say no more than
// the caller could learn by looking; and the thread that took on the
// caller's identity never serves the daemon again.
func TestResolutionUsesTheCallersView(t *testing.T) {
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
	// t.TempDir's parent is 0700: the users must be able to get through.
	must(os.Chmod(filepath.Dir(root), 0o755))
	must(os.Chmod(root, 0o755))
	ws := filepath.Join(root, alice.Name)
	must(os.MkdirAll(filepath.Join(ws, "secret"), 0o755))
	must(os.WriteFile(filepath.Join(ws, "Makefile"), []byte("all: ; @:\n"), 0o644))
	must(os.Chown(ws, alice.UID, alice.GID))
	// A root-only directory inside alice's workspace, holding a symlink to
	// somewhere alice must not learn about.
	must(os.Chmod(filepath.Join(ws, "secret"), 0o700))
	must(os.Symlink("/root/hidden-target", filepath.Join(ws, "secret", "inner")))
	// A directory only the bs-team group may enter.
	team := testenv.GroupID(t, testenv.GroupShared)
	must(os.MkdirAll(filepath.Join(ws, "team", "sub"), 0o750))
	must(os.Chown(filepath.Join(ws, "team"), 0, team))
	must(os.Chmod(filepath.Join(ws, "team"), 0o750))

	m, err := New(config.Build{WorkspaceRoot: root, PathMapping: config.PathMapping{HostTemplate: "{workspace_root}/{user}"}})
	must(err)
	req := protocol.Request{Command: "make", Args: []string{"-C", "secret/inner", "-I", "team/sub"}, Cwd: ws}
	asAlice := Caller{Name: alice.Name, UID: alice.UID, GID: alice.GID, Groups: alice.Groups}

	t.Run("alice cannot learn where a symlink in a root-only directory points", func(t *testing.T) {
		f, err := m.Map(context.Background(), asAlice, req)
		must(err)
		d := f.Make.Directories[0]
		if d.Error != "permission denied" || d.Resolved != "" || d.Inside || d.Exists {
			t.Errorf("got %+v, want permission denied and nothing resolved", d)
		}
		if len(f.Make.Argv) != 0 {
			t.Errorf("argv %q for an unresolvable -C", f.Make.Argv)
		}
	})
	t.Run("root, resolving as itself, would have seen the target", func(t *testing.T) {
		f, err := m.Map(context.Background(), Caller{Name: alice.Name, UID: 0, GID: 0}, req)
		must(err)
		if d := f.Make.Directories[0]; d.Resolved != "/root/hidden-target" {
			t.Errorf("got %+v", d)
		}
	})
	t.Run("alice's supplementary groups count", func(t *testing.T) {
		r := req
		r.Args = []string{"-I", "team/sub"}
		f, err := m.Map(context.Background(), asAlice, r)
		must(err)
		if pf := f.Make.Includes[0]; pf.Resolved != filepath.Join(ws, "team/sub") || !pf.IsDir || !pf.Inside {
			t.Errorf("with bs-team: %+v", pf)
		}
		noGroups := asAlice
		noGroups.Groups = nil
		f, err = m.Map(context.Background(), noGroups, r)
		must(err)
		if pf := f.Make.Includes[0]; pf.Error != "permission denied" {
			t.Errorf("without bs-team: %+v", pf)
		}
	})
	t.Run("alice's own workspace passes StrictModes, bob's view of it does not", func(t *testing.T) {
		f, err := m.Map(context.Background(), asAlice, req)
		must(err)
		if !f.Workspace.Safe || f.Workspace.Resolved != ws {
			t.Errorf("alice: %+v", f.Workspace)
		}
		must(os.MkdirAll(filepath.Join(root, bob.Name), 0o755))
		must(os.Chown(filepath.Join(root, bob.Name), alice.UID, alice.GID)) // bob's workspace, owned by alice
		f, err = m.Map(context.Background(), Caller{Name: bob.Name, UID: bob.UID, GID: bob.GID}, protocol.Request{Command: "make", Cwd: "/"})
		must(err)
		want := filepath.Join(root, bob.Name) + " is owned by uid " + strconv.Itoa(alice.UID) + ", not by root or you"
		if f.Workspace.Safe || f.Workspace.UnsafeReason != want {
			t.Errorf("bob: %+v, want %q", f.Workspace, want)
		}
	})
	t.Run("no thread keeps alice's identity: the daemon still sees root-only paths afterwards", func(t *testing.T) {
		private := filepath.Join(root, "root-only")
		must(os.Mkdir(private, 0o700))
		must(os.WriteFile(filepath.Join(private, "f"), nil, 0o600))
		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := m.Map(context.Background(), asAlice, req); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		errs := make(chan error, 400)
		for i := 0; i < 400; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := os.Stat(filepath.Join(private, "f"))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("a daemon thread lost root's view after resolving as alice: %v", err)
			}
		}
	})
}

// The differential test again, with the mapper resolving as bs-alice and
// make running as bs-alice, in a workspace holding a root-only directory:
// whatever alice's make can or cannot see, the facts say the same.
func TestDifferentialAsTheCaller(t *testing.T) {
	alice, _ := testenv.EnsureUsers(t)
	w := newDiffWorld(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(filepath.Dir(w.root), 0o755))
	must(os.Chmod(w.root, 0o755))
	must(os.MkdirAll(filepath.Join(w.ws, "secret", "inner"), 0o755))
	must(os.WriteFile(filepath.Join(w.ws, "secret", "Makefile"), []byte(probeMakefile), 0o644))
	must(os.WriteFile(filepath.Join(w.ws, "secret", "inner", "Makefile"), []byte(probeMakefile), 0o644))
	must(os.Symlink("secret/inner", filepath.Join(w.ws, "into-secret")))
	must(filepath.Walk(w.ws, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, alice.UID, alice.GID)
	}))
	must(os.Chown(filepath.Join(w.ws, "secret"), 0, 0))
	must(os.Chmod(filepath.Join(w.ws, "secret"), 0o700))
	w.caller = Caller{Name: "ws", UID: alice.UID, GID: alice.GID, Groups: alice.Groups}
	groups := make([]uint32, len(alice.Groups))
	for i, g := range alice.Groups {
		groups[i] = uint32(g)
	}
	w.cred = &syscall.Credential{Uid: uint32(alice.UID), Gid: uint32(alice.GID), Groups: groups}
	m := w.mapper(t)
	st := &diffStats{}
	secretCases := [][]string{
		{"-C", "secret"}, {"-C", "into-secret"}, {"-C", "secret/.."}, {"-C", "secret/inner"}, {"-f", "secret/Makefile"},
		{"-f", "into-secret/Makefile"}, {"-I", "secret"}, {"-I", "into-secret", "-I", "inc"}, {"-C", "a", "-C", "../secret"},
		{"-C", "into-secret/.."}, {"--directory=secret", "-f", "Makefile"}, {"-kCsecret"},
	}
	for _, args := range append(append(secretCases, handCases(w.ws)...), genCases(w.ws, 100)...) {
		w.check(t, m, st, w.ws, w.ws, args, args, nil)
	}
	t.Logf("as bs-alice: %d cases, %d agreed with make run as bs-alice, %d rejected by the mapper", st.cases, st.agreed, st.rejected)
	if st.agreed < 150 {
		t.Fatalf("too few meaningful cases: %+v", st)
	}
}
