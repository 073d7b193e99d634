package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/build-service/build-service/internal/testenv"
)

// The mapper resolved the working directory; between that check and the
// fork's chdir, anyone who can write the workspace can swap a component of
// the path for a symlink to somewhere else. The build must not start there.
func TestABuildRefusesAWorkingDirectorySwappedForASymlink(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	ws := workspace(t, u)
	outside := filepath.Join(testenv.SharedTempDir(t), "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(outside, "Makefile"), "all:\n\t@echo ran outside > "+filepath.Join(ws, "marker")+"\n")
	// The state after the swap: the checked path is now a symlink.
	checked := filepath.Join(ws, "proj")
	if err := os.Symlink(outside, checked); err != nil {
		t.Fatal(err)
	}
	res, c := runJob(t, x, makeJob(u, checked))
	if res.Code != 127 || res.StartErr == nil || !strings.Contains(res.StartErr.Error(), "changed between the check and the start") {
		t.Errorf("result %+v\n%s", res, c)
	}
	if _, err := os.Stat(filepath.Join(ws, "marker")); err == nil {
		t.Errorf("make ran in the directory the symlink points to")
	}
	assertNothingLeft(t, u)
}

func TestABuildWhoseWorkingDirectoryVanishedSaysSo(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	gone := filepath.Join(workspace(t, u), "gone")
	res, c := runJob(t, x, makeJob(u, gone))
	want := "working directory " + gone + ": no such file or directory"
	if res.Code != 127 || res.StartErr == nil || res.StartErr.Error() != want {
		t.Errorf("result %+v, want StartErr %q\n%s", res, want, c)
	}
	assertNothingLeft(t, u)
}

func TestABuildWhoseWorkingDirectoryIsAFileSaysSo(t *testing.T) {
	u := carol(t)
	x := newExecutor(t, Options{})
	file := filepath.Join(workspace(t, u), "file")
	writeFile(t, file, "")
	res, c := runJob(t, x, makeJob(u, file))
	want := "working directory " + file + ": not a directory"
	if res.Code != 127 || res.StartErr == nil || res.StartErr.Error() != want {
		t.Errorf("result %+v, want StartErr %q\n%s", res, want, c)
	}
	assertNothingLeft(t, u)
}
