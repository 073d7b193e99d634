package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/build-service/build-service/policies"
)

// EntryPoint is the rule every policy set must define.
const EntryPoint = "data.build_service.decision"

// Sentinel errors of policy loading; wrapped with the details.
var (
	// ErrReservedConfig: an operator data.json (or a package) claims
	// data.config, which is the daemon's configuration.
	ErrReservedConfig = errors.New("data.config is reserved for the daemon's configuration")
	// ErrNoEntryPoint: the policy compiles but does not define the entry point.
	ErrNoEntryPoint = errors.New("policy does not define " + EntryPoint)
	// ErrCompile: the policy does not parse, type-check or compile; the
	// wrapped OPA errors carry file:line.
	ErrCompile = errors.New("policy does not compile")
)

var (
	entryRef  = ast.MustParseRef(EntryPoint)
	configRef = ast.MustParseRef("data.config")
)

// policySet is a loaded (not yet compiled) set of policy files.
type policySet struct {
	source   string                 // "bundled" or the operator directory
	modules  map[string]*ast.Module // file name -> parsed module
	data     map[string]any         // merged data.json documents
	revision string
}

// capabilities returns the shipped capabilities (policies/capabilities.json).
func capabilities() (*ast.Capabilities, error) {
	bs, err := fs.ReadFile(policies.FS(), policies.Capabilities)
	if err != nil {
		return nil, fmt.Errorf("read bundled %s: %w", policies.Capabilities, err)
	}
	caps, err := ast.LoadCapabilitiesJSON(bytes.NewReader(bs))
	if err != nil {
		return nil, fmt.Errorf("load bundled %s: %w", policies.Capabilities, err)
	}
	return caps, nil
}

// schemaSet returns the input schema as schema.input.
func schemaSet() (*ast.SchemaSet, error) {
	bs, err := fs.ReadFile(policies.FS(), policies.InputSchema)
	if err != nil {
		return nil, fmt.Errorf("read bundled %s: %w", policies.InputSchema, err)
	}
	var schema any
	if err := util.Unmarshal(bs, &schema); err != nil {
		return nil, fmt.Errorf("parse bundled %s: %w", policies.InputSchema, err)
	}
	ss := ast.NewSchemaSet()
	ss.Put(ast.MustParseRef("schema.input"), schema)
	return ss, nil
}

// loadPolicySet reads the bundled set (dir == "") or an operator directory:
// every .rego file (the _test.rego files only when tests is true) and
// every data.json, recursively. Other files (schemas, capabilities, the
// manifest, READMEs) are ignored, like a bundle ignores them.
func loadPolicySet(dir string, tests bool, caps *ast.Capabilities) (*policySet, error) {
	var fsys fs.FS
	name := func(rel string) string { return "bundled:" + rel }
	source := "bundled"
	if dir == "" {
		fsys = policies.FS()
	} else {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("policy directory %s: %w", dir, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("policy directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("policy directory %s: not a directory", abs)
		}
		// The directory and its ancestors first: nothing is opened in a
		// directory someone else could fill (with a FIFO, say).
		if err := checkPolicyPerms(abs, nil); err != nil {
			return nil, err
		}
		fsys = os.DirFS(abs)
		name = func(rel string) string { return filepath.Join(abs, filepath.FromSlash(rel)) }
		source = abs
	}

	set := &policySet{source: source, modules: map[string]*ast.Module{}, data: map[string]any{}}
	type file struct {
		rel string
		bs  []byte
	}
	var files []file
	err := fs.WalkDir(fsys, ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if dir != "" && rel != "." {
				// A subdirectory's owner could add, remove or swap the
				// files in it: it is held to the same rule as the files.
				if err := checkPolicyEntry(name(rel)); err != nil {
					return err
				}
			}
			return nil
		}
		base := path.Base(rel)
		isRego := strings.HasSuffix(base, ".rego") && (tests || !strings.HasSuffix(base, "_test.rego"))
		if !isRego && base != "data.json" {
			return nil
		}
		var bs []byte
		if dir == "" {
			bs, err = fs.ReadFile(fsys, rel)
		} else {
			bs, err = readPolicyFile(name(rel))
		}
		if err != nil {
			return err
		}
		files = append(files, file{rel, bs})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", source, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	if dir != "" {
		names := make([]string, 0, len(files))
		for _, f := range files {
			names = append(names, name(f.rel))
		}
		if err := checkPolicyPerms(source, names); err != nil {
			return nil, err
		}
	}

	h := sha256.New()
	opts := ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true, Capabilities: caps}
	var parseErrs ast.Errors
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.rel, len(f.bs))
		h.Write(f.bs)
		if path.Base(f.rel) == "data.json" {
			var doc any
			if err := util.UnmarshalJSON(f.bs, &doc); err != nil {
				return nil, fmt.Errorf("read policy data %s: %w", name(f.rel), err)
			}
			obj, ok := doc.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("read policy data %s: top level is not an object", name(f.rel))
			}
			if err := mergeData(set.data, path.Dir(f.rel), obj); err != nil {
				return nil, fmt.Errorf("read policy data %s: %w", name(f.rel), err)
			}
			if _, ok := set.data["config"]; ok {
				return nil, fmt.Errorf("policy data %s: %w: remove its top-level \"config\" key", name(f.rel), ErrReservedConfig)
			}
			continue
		}
		m, err := ast.ParseModuleWithOpts(name(f.rel), string(f.bs), opts)
		if err != nil {
			var errs ast.Errors
			if errors.As(err, &errs) {
				parseErrs = append(parseErrs, errs...)
				continue
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrCompile, name(f.rel), err)
		}
		if m.Package.Path.HasPrefix(configRef) {
			return nil, fmt.Errorf("policy %s: package %s: %w", name(f.rel), m.Package.Path, ErrReservedConfig)
		}
		set.modules[name(f.rel)] = m
	}
	if len(parseErrs) > 0 {
		return nil, fmt.Errorf("%w: %s: %w", ErrCompile, source, regoErrors{parseErrs})
	}
	if len(set.modules) == 0 {
		return nil, fmt.Errorf("policy %s: no .rego files: %w", source, ErrNoEntryPoint)
	}
	set.revision = hex.EncodeToString(h.Sum(nil))[:16]
	return set, nil
}

// mergeData puts doc at the data path of dir ("." = root), refusing to
// overwrite a value another data.json set.
func mergeData(root map[string]any, dir string, doc map[string]any) error {
	node := root
	if dir != "." {
		for _, part := range strings.Split(dir, "/") {
			child, ok := node[part]
			if !ok {
				child = map[string]any{}
				node[part] = child
			}
			m, ok := child.(map[string]any)
			if !ok {
				return fmt.Errorf("data path %s conflicts with a value", dir)
			}
			node = m
		}
	}
	for k, v := range doc {
		if _, ok := node[k]; ok {
			return fmt.Errorf("key %q is set twice", k)
		}
		node[k] = v
	}
	return nil
}

// newCompiler returns the compiler every policy set (bundled, operator,
// tests) is compiled with: the shipped capabilities and the input schema
// for schema annotations.
func newCompiler(caps *ast.Capabilities, ss *ast.SchemaSet) *ast.Compiler {
	return ast.NewCompiler().
		WithCapabilities(caps).
		WithSchemas(ss).
		WithUseTypeCheckAnnotations(true)
}

// regoErrors renders OPA's errors on one line each joined with "; "
// ("file:row: code: message"), where ast.Errors would print a count, the
// source line and a caret on lines of their own: an operator reads this in
// one log line or one check-config line. The original stays reachable with
// errors.As.
type regoErrors struct{ errs ast.Errors }

func (e regoErrors) Error() string {
	parts := make([]string, 0, len(e.errs))
	for _, x := range e.errs {
		loc := ""
		if x.Location != nil {
			loc = fmt.Sprintf("%s:%d: ", x.Location.File, x.Location.Row)
		}
		parts = append(parts, strings.TrimSpace(loc+x.Code+": "+x.Message))
	}
	return strings.Join(parts, "; ")
}

func (e regoErrors) Unwrap() error { return e.errs }
