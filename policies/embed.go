// Package policies holds the bundled Rego policy of build-service: the
// decision entry point data.build_service.decision, one file per concern,
// their _test.rego files, the input document's JSON Schema
// (schemas/input.json) and the OPA capabilities the policy is compiled
// with (capabilities.json). It embeds them so the daemon needs no files at
// run time.
//
// This package only carries files. It must not import OPA: the engine
// package is the only one that compiles or evaluates Rego.
package policies

import (
	"embed"
	"io/fs"
)

// Names of the files with a fixed role in the bundled set.
const (
	// Manifest is the bundle manifest (rego_version 1, roots).
	Manifest = ".manifest"
	// InputSchema is the JSON Schema of the input document; policies
	// refer to it as schema.input.
	InputSchema = "schemas/input.json"
	// SchemaDir is the directory `opa check --schema` is pointed at.
	SchemaDir = "schemas"
	// Capabilities is the OPA capabilities file: builtins that reach
	// outside the decision (http.send, net.*, opa.runtime, time.now_ns,
	// rand.*, ...) are left out.
	Capabilities = "capabilities.json"
)

//go:embed .manifest README.md *.rego schemas/input.json capabilities.json
var files embed.FS

// FS returns the bundled policy set: .rego files (tests included), the
// manifest, the input schema and the capabilities file, at the root.
func FS() fs.FS { return files }
