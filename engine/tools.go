package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/build-service/build-service/policies"
)

// ErrTestsFailed is returned by RunPolicyTests when a test fails or none ran.
var ErrTestsFailed = errors.New("policy tests failed")

// ExportBundled writes the bundled policy set into dir (created if
// missing) as a starting point for an operator policy: every .rego file
// with its tests, the manifest, schemas/input.json and capabilities.json.
// It refuses to overwrite anything: if any target exists, nothing is
// written and the error wraps fs.ErrExist.
//
// It runs as root, often in a shared place such as /tmp: a symlink another
// user planted at dir, at one of its ancestors or inside an existing dir
// must not make it write elsewhere, and a directory another user could
// change is refused (wrapping ErrUnsafePolicy) before anything is written,
// as the daemon would refuse to load from it. Files are created through an
// os.Root on the checked directory, which follows no symlink out of it.
func ExportBundled(dir string) error {
	src := policies.FS()
	var files []string
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("export policy: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("export policy to %s: %w", dir, err)
	}
	// What already exists of the path must be safe before anything is
	// created under it, and again once it exists: a symlink planted
	// between the first check and the mkdir is caught then.
	if err := checkPolicyDir(abs); err != nil {
		return fmt.Errorf("export policy to %s: %w (nothing written)", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("export policy: %w", err)
	}
	if err := checkPolicyDir(abs); err != nil {
		return fmt.Errorf("export policy to %s: %w (nothing written)", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("export policy: %w", err)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return fmt.Errorf("export policy: %w", err)
	}
	defer root.Close()
	for _, f := range files {
		target := filepath.FromSlash(f)
		if _, err := root.Lstat(target); err == nil {
			return fmt.Errorf("export policy to %s: %s: %w (nothing written)", dir, filepath.Join(abs, target), fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("export policy: %w", err)
		}
	}
	for _, f := range files {
		bs, err := fs.ReadFile(src, f)
		if err != nil {
			return fmt.Errorf("export policy: %w", err)
		}
		target := filepath.FromSlash(f)
		if sub := filepath.Dir(target); sub != "." {
			if err := root.MkdirAll(sub, 0o755); err != nil {
				return fmt.Errorf("export policy: %w", err)
			}
		}
		out, err := root.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("export policy: %w", err)
		}
		_, werr := out.Write(bs)
		if cerr := out.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("export policy: write %s: %w", filepath.Join(abs, target), werr)
		}
	}
	return nil
}

// TestReport summarises a policy test run.
type TestReport struct {
	Passed, Failed int
	// Coverage is the line coverage of the policy files (tests excluded),
	// in percent.
	Coverage float64
	// NotCovered lists "file:row" of policy lines no test reached.
	NotCovered []string
}

// RunPolicyTests runs the Rego tests of the bundled set (dir == "") or of
// an operator directory with OPA's own tester, compiled with the same
// capabilities and input schema as the daemon, and prints OPA's report
// and the policy's line coverage to w. It fails when a test fails or no
// test ran.
func RunPolicyTests(ctx context.Context, dir string, w io.Writer) error {
	rep, err := PolicyTests(ctx, dir, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "policy line coverage: %.2f%%\n", rep.Coverage)
	if rep.Failed > 0 || rep.Passed == 0 {
		return fmt.Errorf("%w: %d passed, %d failed", ErrTestsFailed, rep.Passed, rep.Failed)
	}
	return nil
}

// PolicyTests runs the tests like RunPolicyTests and returns the counts
// and coverage; OPA's report goes to w (nil: discarded).
func PolicyTests(ctx context.Context, dir string, w io.Writer) (TestReport, error) {
	var rep TestReport
	if w == nil {
		w = io.Discard
	}
	caps, err := capabilities()
	if err != nil {
		return rep, err
	}
	ss, err := schemaSet()
	if err != nil {
		return rep, err
	}
	set, err := loadPolicySet(dir, true, caps)
	if err != nil {
		return rep, err
	}
	generic, err := toJSONValue(set.data)
	if err != nil {
		return rep, err
	}
	store := inmem.NewFromObject(generic.(map[string]any))
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return rep, fmt.Errorf("policy tests: %w", err)
	}
	defer store.Abort(ctx, txn)

	cov := cover.New()
	runner := tester.NewRunner().
		SetCompiler(newCompiler(caps, ss).WithEnablePrintStatements(true)).
		SetStore(store).
		SetModules(set.modules).
		CapturePrintOutput(true).
		SetCoverageQueryTracer(cov).
		SetTimeout(30 * time.Second)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return rep, fmt.Errorf("policy tests %s: %w", set.source, err)
	}
	results := make(chan *tester.Result)
	go func() {
		defer close(results)
		for r := range ch {
			if r.Pass() {
				rep.Passed++
			} else if !r.Skip {
				rep.Failed++
			}
			results <- r
		}
	}()
	if err := (tester.PrettyReporter{Output: w}).Report(results); err != nil {
		return rep, fmt.Errorf("policy tests report: %w", err)
	}

	policyOnly := map[string]*ast.Module{}
	for name, m := range set.modules {
		if !strings.HasSuffix(name, "_test.rego") {
			policyOnly[name] = m
		}
	}
	report := cov.Report(policyOnly)
	covered, missed := 0, 0
	for name, f := range report.Files {
		for _, r := range f.Covered {
			covered += r.End.Row - r.Start.Row + 1
		}
		for _, r := range f.NotCovered {
			missed += r.End.Row - r.Start.Row + 1
			for row := r.Start.Row; row <= r.End.Row; row++ {
				rep.NotCovered = append(rep.NotCovered, fmt.Sprintf("%s:%d", name, row))
			}
		}
	}
	slices.Sort(rep.NotCovered)
	if covered+missed > 0 {
		rep.Coverage = 100 * float64(covered) / float64(covered+missed)
	}
	return rep, nil
}
