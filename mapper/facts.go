package mapper

// Facts is what the mapper learned about one request, in the shape the
// engine puts into the input document (json tags are the document's names).
// Paths named "host" are mapped but not resolved; "resolved" are real paths
// with symlinks followed (through the longest existing prefix when the rest
// does not exist yet).
type Facts struct {
	Workspace WorkspaceFacts `json:"workspace"`
	Cwd       CwdFacts       `json:"cwd"`
	Make      *MakeFacts     `json:"make"` // nil when the command is not make
}

type WorkspaceFacts struct {
	Container string `json:"container"` // container root for this user
	Host      string `json:"host"`      // host root for this user (template applied)
	Resolved  string `json:"resolved"`  // real path of Host
	Exists    bool   `json:"exists"`
	// Safe reports the StrictModes-style check: the host workspace and
	// every ancestor are owned by root or the caller and not writable by
	// others (root-owned sticky dirs excepted). UnsafeReason says why not.
	Safe         bool   `json:"safe"`
	UnsafeReason string `json:"unsafe_reason,omitempty"`
}

type CwdFacts struct {
	Container string `json:"container"`
	Host      string `json:"host"`     // "" when the path is outside every mapping
	Resolved  string `json:"resolved"` // "" when Host is ""
	Mapped    bool   `json:"mapped"`
	Inside    bool   `json:"inside_workspace"`
	IsDir     bool   `json:"is_dir"`
	// Error says why the cwd could not be used ("permission denied", "no
	// such directory", "not a directory", ...); "" when it resolved.
	Error string `json:"error,omitempty"`
}

// PathFact is one path named on make's command line (or in MAKEFLAGS /
// MAKEFILES), as the user spelled it and as make will use it.
type PathFact struct {
	Option string `json:"option"` // canonical option: "-C", "-f", "-I", "-o", "-W", "MAKEFILES"
	Arg    string `json:"arg"`    // as given
	// Source: "argv", "MAKEFLAGS", "GNUMAKEFLAGS", "MAKEFILES" (the
	// environment), "argv:MAKEFLAGS" (a MAKEFLAGS=... word on the command
	// line), "MAKEFLAGS:MAKEFLAGS" (nested), or "default" (DefaultMakefile).
	Source   string `json:"source"`
	Host     string `json:"host"`     // mapped to host, absolute
	Resolved string `json:"resolved"` // real path
	Inside   bool   `json:"inside_workspace"`
	Exists   bool   `json:"exists"`
	// Mapped is false when an absolute container path is outside every
	// mapping (Host and Resolved are then "").
	Mapped bool `json:"mapped"`
	IsDir  bool `json:"is_dir"`
	// Error says why the path could not be resolved as the caller
	// ("outside every mapped path", "permission denied", "too many levels
	// of symbolic links"...); Resolved is "" then. It never says more than
	// the caller could learn by looking.
	Error string `json:"error,omitempty"`
}

type Assignment struct {
	Name   string `json:"name"`
	Op     string `json:"op"` // "=", ":=", "::=", "+=", "?=", "!="
	Value  string `json:"value"`
	Source string `json:"source"` // as PathFact.Source
}

type MakeFacts struct {
	// Argv is the canonical argv make will be executed with (without
	// argv[0]); empty when ParseError is set.
	Argv       []string `json:"argv"`
	ParseError string   `json:"parse_error,omitempty"`

	Directories []PathFact   `json:"directories"` // every -C, Resolved = dir after applying it
	Makefiles   []PathFact   `json:"makefiles"`   // every -f, resolved against the final dir
	Includes    []PathFact   `json:"includes"`    // every -I
	OtherFiles  []PathFact   `json:"other_files"` // -o, -W, MAKEFILES entries...
	Targets     []string     `json:"targets"`
	Assignments []Assignment `json:"assignments"`
	Eval        []string     `json:"eval"`    // --eval / -E texts
	Options     []string     `json:"options"` // canonical long names of every option given, e.g. "--jobs"
	// EffectiveDir is the real directory make runs in (after every -C).
	EffectiveDir string `json:"effective_dir"`
	// EffectiveInside reports whether EffectiveDir is inside the workspace.
	EffectiveInside bool `json:"effective_dir_inside_workspace"`
	// EffectiveIsDir is false when the final directory does not exist (make
	// would stop at its -C).
	EffectiveIsDir bool `json:"effective_dir_is_dir"`
	// DefaultMakefile is the GNUmakefile/makefile/Makefile make reads in
	// EffectiveDir when no -f is given (nil when none exists).
	DefaultMakefile *PathFact `json:"default_makefile"`
}
