// Package mapper turns one request into facts for the policy: it expands
// the {user}/{workspace_root} path templates, maps container paths to host
// paths, parses make's command line exactly as GNU make 4.3 does (options,
// clusters, abbreviations, MAKEFLAGS, MAKEFILES, assignments), resolves every
// path make will use (symlinks followed, with the caller's file-system
// identity) and renders the canonical argv make is executed with.
//
// It must not decide anything (that is the policy's job), must never open a
// workspace file for reading (O_PATH walks and fstat only, so a FIFO cannot
// hang it), and must not import OPA or zerolog.
//
// # Paths
//
// An absolute container path is mapped by the mapping with the longest
// container prefix, compared by whole components (/home/alice2 is not under
// /home/alice); a path under no mapping is a fact (Mapped=false, Error
// "outside every mapped path"). The primary build.path_mapping is the
// workspace: Inside means "under the workspace's real path". Relative paths
// are taken against the real directory make is in at that point (the cwd,
// then each -C in turn; -f, -I, -o, -W and MAKEFILES against the final
// one), and ".." is taken physically, after symlinks, as the kernel does.
// A path that does not exist yet resolves through its longest existing
// prefix (Exists=false). Paths inside MAKEFLAGS, GNUMAKEFLAGS and MAKEFILES
// values reach make unchanged, so they are resolved literally as host paths.
//
// Resolution runs with the caller's file-system identity (see asCaller): a
// component the caller cannot search is reported as "permission denied"
// with nothing resolved, never with what lies behind it. One request may
// walk at most maxLookups components in all and stops when its context
// ends; a path past either has an Error and nothing resolved.
//
// # Canonical argv
//
// MakeFacts.Argv is what make is executed with (without argv[0]):
//
//		[--directory=<EffectiveDir>] <options in the user's order> -- <assignments and targets as given>
//
//	  - every -C collapses into one --directory with the final real directory
//	    (present exactly when the user gave a -C, so make's "Entering
//	    directory" lines stay as the user expects); when a -C does not exist,
//	    the unresolved host path of the first failing one is passed instead,
//	    so make stops on it just as it would have;
//	  - each option has one spelling: the long form with "=" for its
//	    argument (--keep-going, --jobs=4, --jobs, --file=/real/path), "-d"
//	    (which has no long form); -b and -m (ignored by make) are dropped;
//	  - -f and -I carry the real host path (the unresolved host path when it
//	    does not exist); -o and -W keep a relative name as given (make
//	    compares these names with its targets as strings, and it runs in the
//	    same final directory), an absolute one gets its host spelling;
//	  - "--" ends the options, so no target or assignment can be read as an
//	    option; make still treats V=x after "--" as an assignment, so
//	    assignments keep their meaning.
//
// Argv is empty when ParseError is set, and also when a path make needs
// could not be resolved (unmapped, permission denied, symlink loop): the
// facts then say why and the policy denies.
//
// # Working directory for the executor
//
// Run make with Job.Dir = Facts.Cwd.Resolved and Args = MakeFacts.Argv.
// Every path in Argv is absolute, so the argv does not depend on the
// directory; Cwd.Resolved is where make starts, exactly as the user's make
// would have, and the canonical --directory takes it to EffectiveDir.
// EffectiveDir is where make reads its makefiles and runs recipes.
package mapper

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/protocol"
	"golang.org/x/sys/unix"
)

// Caller is who the paths are resolved for: pass the identity the build
// would run with (engine.ComputeIdentity's uid, gid and groups), so the walk
// sees exactly what the build could see.
type Caller struct {
	Name   string
	UID    int
	GID    int
	Groups []int
}

// ResolveTimeout bounds one request's path resolution (a hung FUSE lookup
// must not hold a connection forever).
const ResolveTimeout = 10 * time.Second

// maxFlagsDepth bounds MAKEFLAGS=... assignments nested in MAKEFLAGS.
const maxFlagsDepth = 3

type template struct {
	container, host string // may contain {user}
	mode            string
	primary         bool
}

// Mapper holds the validated templates; it is immutable and safe for
// concurrent use.
type Mapper struct {
	templates []template
}

// New validates the path templates of b ({workspace_root} expanded now,
// {user} per request). An empty container_template means "same as host".
func New(b config.Build) (*Mapper, error) {
	m := &Mapper{}
	add := func(pm config.PathMapping, primary bool, where string) error {
		host := pm.HostTemplate
		if host == "" && primary {
			host = "{workspace_root}/{user}"
		}
		cont := pm.ContainerTemplate
		if cont == "" {
			cont = host
		}
		t := template{mode: pm.Mode, primary: primary}
		if t.mode == "" {
			t.mode = "rw"
		}
		if t.mode != "rw" && t.mode != "ro" {
			return fmt.Errorf("mapper: %s mode %q: want \"rw\" or \"ro\"", where, pm.Mode)
		}
		for _, s := range []struct {
			dst  *string
			val  string
			name string
		}{{&t.host, host, "host_template"}, {&t.container, cont, "container_template"}} {
			v := strings.ReplaceAll(s.val, "{workspace_root}", b.WorkspaceRoot)
			check := strings.ReplaceAll(v, "{user}", "u")
			if strings.ContainsAny(check, "{}") {
				return fmt.Errorf("mapper: %s %s %q: only {user} and {workspace_root} may be used", where, s.name, s.val)
			}
			if !filepath.IsAbs(check) || filepath.Clean(check) != check {
				return fmt.Errorf("mapper: %s %s %q expands to %q: want a clean absolute path (no \"..\", \".\" or trailing \"/\")", where, s.name, s.val, v)
			}
			*s.dst = v
		}
		if primary && !strings.Contains(t.host, "{user}") {
			return fmt.Errorf("mapper: %s host_template %q must contain {user}", where, pm.HostTemplate)
		}
		m.templates = append(m.templates, t)
		return nil
	}
	if err := add(b.PathMapping, true, "build.path_mapping"); err != nil {
		return nil, err
	}
	for i, pm := range b.PathMappings {
		if err := add(pm, false, fmt.Sprintf("build.path_mappings[%d]", i)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type mapping struct {
	container, host []string // components
	containerPath   string
	hostPath        string
	mode            string
}

func (m *Mapper) forUser(name string) ([]mapping, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00\n") {
		return nil, fmt.Errorf("mapper: user name %q cannot be put into a path", name)
	}
	var out []mapping
	for _, t := range m.templates {
		c := strings.ReplaceAll(t.container, "{user}", name)
		h := strings.ReplaceAll(t.host, "{user}", name)
		out = append(out, mapping{container: splitComponents(c), host: splitComponents(h), containerPath: c, hostPath: h, mode: t.mode})
	}
	return out, nil
}

// toHost maps an absolute container path: the mapping with the longest
// container prefix (by whole components, never string prefix) wins.
// Components after the prefix are kept as written ("." dropped, ".." kept,
// since the kernel takes ".." after following symlinks).
func toHost(ms []mapping, p string) (string, bool) {
	comps := splitComponents(p)
	best := -1
	for i, m := range ms {
		if len(m.container) > len(comps) {
			continue
		}
		ok := true
		for k, c := range m.container {
			if comps[k] != c {
				ok = false
				break
			}
		}
		if ok && (best < 0 || len(m.container) > len(ms[best].container)) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	rest := comps[len(ms[best].container):]
	return "/" + strings.Join(append(append([]string{}, ms[best].host...), rest...), "/"), true
}

// IsMake reports whether a request's command is GNU make (the facts have a
// Make part only then).
func IsMake(command string) bool { return command == "make" || command == "gmake" }

// Map computes the facts for one request. Bad arguments and bad paths are
// facts (ParseError, Inside=false, Error...); the error is only for internal
// failures (an impossible user name, a resolution that timed out).
func (m *Mapper) Map(ctx context.Context, c Caller, req protocol.Request) (*Facts, error) {
	ms, err := m.forUser(c.Name)
	if err != nil {
		return nil, err
	}
	f := &Facts{}
	f.Workspace.Container = ms[0].containerPath
	f.Workspace.Host = ms[0].hostPath
	f.Cwd.Container = req.Cwd

	var pl *plan
	if IsMake(req.Command) {
		pl = parseRequest(req)
		f.Make = &MakeFacts{
			Directories: []PathFact{}, Makefiles: []PathFact{}, Includes: []PathFact{},
			OtherFiles: []PathFact{}, Targets: []string{}, Assignments: []Assignment{},
			Eval: []string{}, Options: []string{}, Argv: []string{},
		}
	}

	ctx, cancel := context.WithTimeout(ctx, ResolveTimeout)
	defer cancel()
	if err := asCaller(ctx, c, func() { m.resolveAll(ctx, f, pl, ms, c) }); err != nil {
		return nil, err
	}
	return f, nil
}

// resolveAll does every file-system lookup of one request; it runs with the
// caller's file-system identity, and gives up on every lookup once ctx ends
// or the request's lookup budget (maxLookups) is spent.
func (m *Mapper) resolveAll(ctx context.Context, f *Facts, pl *plan, ms []mapping, c Caller) {
	wk := newWalk(ctx)
	ws := resolvePath(wk, f.Workspace.Host)
	if ws.Err == nil {
		f.Workspace.Resolved = ws.Path
		f.Workspace.Exists = ws.Exists && ws.IsDir
	}
	switch {
	case ws.Err != nil:
		f.Workspace.UnsafeReason = fmt.Sprintf("%s cannot be reached as you: %s", f.Workspace.Host, errText(ws.Err))
	case !ws.Exists:
		f.Workspace.UnsafeReason = fmt.Sprintf("%s does not exist", f.Workspace.Host)
	case !ws.IsDir:
		f.Workspace.UnsafeReason = fmt.Sprintf("%s is not a directory", f.Workspace.Host)
	default:
		f.Workspace.Safe, f.Workspace.UnsafeReason = checkStrict(ws.Path, c.UID)
		if f.Workspace.Safe {
			f.Workspace.Safe, f.Workspace.UnsafeReason = checkSymlinkOwners(f.Workspace.Host, c.UID)
		}
	}
	wsRoot := f.Workspace.Resolved
	if !f.Workspace.Exists {
		wsRoot = "" // nothing is inside a workspace that is not there
	}

	// The working directory.
	base := ""
	if !filepath.IsAbs(f.Cwd.Container) {
		f.Cwd.Error = "the working directory is not an absolute path"
	} else if h, ok := toHost(ms, f.Cwd.Container); ok {
		f.Cwd.Host, f.Cwd.Mapped = h, true
		r := resolvePath(wk, h)
		if r.Err != nil {
			f.Cwd.Error = errText(r.Err)
		} else {
			f.Cwd.Resolved = r.Path
			f.Cwd.IsDir = r.Exists && r.IsDir
			f.Cwd.Inside = within(r.Path, wsRoot)
			if f.Cwd.IsDir {
				base = r.Path
			} else if !r.Exists {
				f.Cwd.Error = "no such directory"
			} else {
				f.Cwd.Error = "not a directory"
			}
		}
	}
	if pl == nil {
		return
	}
	mf := f.Make
	if pl.err != nil {
		mf.ParseError = pl.err.Error()
		mf.Argv = []string{}
		m.fillWords(mf, pl)
		return
	}
	m.fillWords(mf, pl)

	// -C, cumulatively, from the command line only (make ignores -C in
	// MAKEFLAGS).
	// make stops at the first -C it cannot chdir into, so the directory
	// after a failing -C is that one, and later -C are never reached.
	dir, dirOK, dirIsDir := base, base != "", true
	sawC, stopped := false, false
	for _, u := range pl.argv.opts {
		if u.opt.short != 'C' {
			continue
		}
		sawC = true
		if stopped {
			mf.Directories = append(mf.Directories, PathFact{Option: "-C", Arg: u.arg, Source: "argv",
				Error: errNotReached})
			continue
		}
		pf := pathFact(wk, ms, "-C", u.arg, "argv", dir, dirOK, true, wsRoot)
		mf.Directories = append(mf.Directories, pf)
		dirOK = pf.Resolved != ""
		dir = pf.Resolved
		dirIsDir = pf.Exists && pf.IsDir
		stopped = !dirOK || !dirIsDir
	}
	if dirOK {
		mf.EffectiveDir = dir
		mf.EffectiveIsDir = dirIsDir && (sawC || f.Cwd.IsDir)
		mf.EffectiveInside = within(dir, wsRoot)
	}

	for _, s := range pl.all() {
		mapped := s.source == "argv"
		for _, u := range s.d.opts {
			if !u.doit {
				continue
			}
			switch u.opt.short {
			case 'f':
				mf.Makefiles = append(mf.Makefiles, pathFact(wk, ms, "-f", u.arg, s.source, dir, dirOK, mapped, wsRoot))
			case 'I':
				mf.Includes = append(mf.Includes, pathFact(wk, ms, "-I", u.arg, s.source, dir, dirOK, mapped, wsRoot))
			case 'o':
				mf.OtherFiles = append(mf.OtherFiles, pathFact(wk, ms, "-o", u.arg, s.source, dir, dirOK, mapped, wsRoot))
			case 'W':
				mf.OtherFiles = append(mf.OtherFiles, pathFact(wk, ms, "-W", u.arg, s.source, dir, dirOK, mapped, wsRoot))
			}
		}
	}
	for _, mk := range pl.makefiles {
		for _, w := range strings.Fields(mk.value) {
			pf := pathFact(wk, ms, "MAKEFILES", w, mk.source, dir, dirOK, false, wsRoot)
			if !filepath.IsAbs(w) && pf.Error == "" && !pf.Exists {
				pf = searchIncludePath(wk, pf, w, mf.Includes, wsRoot)
			}
			mf.OtherFiles = append(mf.OtherFiles, pf)
		}
	}
	if len(mf.Makefiles) == 0 && dirOK && mf.EffectiveIsDir {
		for _, name := range []string{"GNUmakefile", "makefile", "Makefile"} {
			var st unix.Stat_t
			if unix.Fstatat(unix.AT_FDCWD, filepath.Join(dir, name), &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				pf := pathFact(wk, ms, "default", name, "default", dir, true, false, wsRoot)
				mf.DefaultMakefile = &pf
				break
			}
		}
	}
	mf.Argv = canonicalArgv(pl, mf, sawC)
}

// pathFact resolves one path argument. Relative paths are relative to dir
// (the directory make is in at that point); absolute ones are mapped from
// the container when mapped is true, and taken literally otherwise (paths
// inside MAKEFLAGS/MAKEFILES reach make unchanged, so make sees them as host
// paths).
func pathFact(wk *walk, ms []mapping, option, arg, source, dir string, dirOK, mapped bool, wsRoot string) PathFact {
	pf := PathFact{Option: option, Arg: arg, Source: source}
	var host string
	switch {
	case filepath.IsAbs(arg) && mapped:
		h, ok := toHost(ms, arg)
		if !ok {
			pf.Error = "outside every mapped path"
			return pf
		}
		host = h
	case filepath.IsAbs(arg):
		host = "/" + strings.Join(splitComponents(arg), "/")
	case !dirOK:
		pf.Error = "relative to a directory that could not be resolved"
		return pf
	default:
		host = "/" + strings.Join(append(splitComponents(dir), splitComponents(arg)...), "/")
	}
	if (strings.HasSuffix(arg, "/") || strings.HasSuffix(arg, "/.")) && !strings.HasSuffix(host, "/") {
		// Keep what makes the kernel demand a directory.
		host += "/"
	}
	pf.Host, pf.Mapped = host, true
	r := resolvePath(wk, host)
	if r.Err != nil {
		pf.Error = errText(r.Err)
		return pf
	}
	pf.Resolved, pf.Exists, pf.IsDir = r.Path, r.Exists, r.Exists && r.IsDir
	pf.Inside = within(r.Path, wsRoot)
	return pf
}

// defaultIncludeDirs is make 4.3's default_include_directories on this
// platform (INCLUDEDIR is /usr/include for a /usr prefix).
var defaultIncludeDirs = []string{"/usr/include", "/usr/gnu/include", "/usr/local/include", "/usr/include"}

// searchIncludePath is what make does with a relative MAKEFILES entry that
// is not in its directory: it looks in the -I directories given at start
// (not those of a MAKEFLAGS=... word, decoded only after the makefiles),
// then in the default ones. The first hit is the file make reads.
func searchIncludePath(wk *walk, pf PathFact, name string, includes []PathFact, wsRoot string) PathFact {
	var dirs []string
	for _, inc := range includes {
		if inc.IsDir && !strings.HasPrefix(inc.Source, "argv:") && !strings.Contains(inc.Source, ":") {
			dirs = append(dirs, inc.Resolved)
		}
	}
	for _, d := range append(dirs, defaultIncludeDirs...) {
		r := resolvePath(wk, filepath.Join(d, name))
		if r.Err != nil && (errors.Is(r.Err, errTooManyLookups) || wk.ctx.Err() != nil) {
			// The search was cut short: make may find the name in a
			// directory not looked at, so nothing is known (fail closed).
			return PathFact{Option: pf.Option, Arg: pf.Arg, Source: pf.Source, Error: errText(r.Err)}
		}
		if r.Err == nil && r.Exists {
			pf.Host = filepath.Join(d, name)
			pf.Resolved, pf.Exists, pf.IsDir = r.Path, true, r.IsDir
			pf.Inside = within(r.Path, wsRoot)
			return pf
		}
	}
	return pf
}

// fillWords copies what needs no file system: options, assignments,
// targets, eval texts.
func (m *Mapper) fillWords(mf *MakeFacts, pl *plan) {
	seen := map[string]bool{}
	for _, s := range pl.all() {
		for _, u := range s.d.opts {
			if !u.doit {
				continue // e.g. -C or -f in MAKEFLAGS, which make ignores
			}
			if n := u.opt.Name(); !seen[n] {
				seen[n] = true
				mf.Options = append(mf.Options, n)
			}
			if u.opt.short == 'E' {
				mf.Eval = append(mf.Eval, u.arg)
			}
		}
		for _, w := range s.d.words {
			if w.assign != nil {
				a := *w.assign
				a.Source = s.source
				mf.Assignments = append(mf.Assignments, a)
			} else if s.source == "argv" {
				mf.Targets = append(mf.Targets, w.text)
			}
		}
	}
}

// canonicalArgv renders what make is executed with: one --directory with
// the final real directory (when the user gave any -C), the other options
// in their order with one long spelling each and real host paths, then
// "--", the assignments and the targets as given. It is empty when a path
// make needs could not be resolved (the facts then say why).
func canonicalArgv(pl *plan, mf *MakeFacts, sawC bool) []string {
	out := []string{}
	if sawC {
		// The last -C that was reached: when it fails, make must fail on
		// it the same way, so a missing one is handed over unresolved.
		var last PathFact
		for _, pf := range mf.Directories {
			if pf.Error != errNotReached {
				last = pf
			}
		}
		p := argPath(last)
		if p == "" {
			return []string{}
		}
		out = append(out, "--directory="+p)
	}
	// argv facts of each kind, in order, to pick the rendered path from.
	next := map[byte][]PathFact{}
	for _, list := range [][]PathFact{mf.Makefiles, mf.Includes, mf.OtherFiles} {
		for _, pf := range list {
			if pf.Source == "argv" && len(pf.Option) == 2 {
				next[pf.Option[1]] = append(next[pf.Option[1]], pf)
			}
		}
	}
	take := func(c byte) PathFact {
		pf := next[c][0]
		next[c] = next[c][1:]
		return pf
	}
	for _, u := range pl.argv.opts {
		o := u.opt
		switch o.kind {
		case kIgnore:
			continue
		case kFlag, kFlagOff:
			out = append(out, o.Name())
			continue
		}
		switch o.short {
		case 'C':
			continue
		case 'f', 'I':
			p := argPath(take(o.short))
			if p == "" {
				return []string{}
			}
			out = append(out, o.Name()+"="+p)
			continue
		case 'o', 'W':
			// make matches these names against its file table by string,
			// so a relative name stays as given (make is in the final
			// directory either way) and an absolute one gets its host
			// spelling.
			pf := take(o.short)
			if filepath.IsAbs(u.arg) {
				if pf.Host == "" {
					return []string{}
				}
				out = append(out, o.Name()+"="+pf.Host)
			} else {
				out = append(out, o.Name()+"="+u.arg)
			}
			continue
		}
		if u.hasArg {
			out = append(out, o.Name()+"="+u.arg)
		} else {
			out = append(out, o.Name())
		}
	}
	out = append(out, "--")
	for _, w := range pl.argv.words {
		out = append(out, w.text)
	}
	return out
}

const errNotReached = "not reached: make stops at an earlier -C"

// argPath is how a path reaches make: the real path when it exists (what
// the policy judged), else the mapped path unresolved, so that make fails
// on it exactly as it would have on the user's spelling.
func argPath(pf PathFact) string {
	if pf.Error != "" {
		return ""
	}
	if pf.Exists {
		return pf.Resolved
	}
	return pf.Host
}

// source is one decoded argument list with where it came from.
type source struct {
	source string
	d      *decoded
}

type makefilesValue struct{ source, value string }

// plan is everything parsed from a request before touching the disk.
type plan struct {
	err       error
	argv      *decoded
	argvAt    int      // flags[:argvAt] came before the command line
	flags     []source // GNUMAKEFLAGS, MAKEFLAGS (env), then nested values
	makefiles []makefilesValue
}

// all lists the flag sources in make's order (environment first, then the
// command line), then values assigned to MAKEFLAGS.
func (p *plan) all() []source {
	var out []source
	at := min(p.argvAt, len(p.flags))
	out = append(out, p.flags[:at]...)
	if p.argv != nil {
		out = append(out, source{"argv", p.argv})
	}
	return append(out, p.flags[at:]...)
}

func parseRequest(r protocol.Request) *plan {
	p := &plan{}
	p.err = p.parse(r)
	return p
}

func (p *plan) parse(r protocol.Request) error {
	for _, name := range []string{"GNUMAKEFLAGS", "MAKEFLAGS"} {
		if v, ok := r.Env[name]; ok {
			if err := p.addFlags(name, v, 0); err != nil {
				return err
			}
		}
	}
	if v, ok := r.Env["MAKEFILES"]; ok {
		if err := p.addMakefiles("MAKEFILES", v); err != nil {
			return err
		}
	}
	d, err := decodeSwitches(r.Args, false, "argv")
	if err != nil {
		return err
	}
	p.argv = d
	p.argvAt = len(p.flags)
	return p.nested("argv", d, 0)
}

// nested handles assignments that change what make reads: MAKEFLAGS and
// GNUMAKEFLAGS values are decoded like the environment's, MAKEFILES values
// are listed.
func (p *plan) nested(src string, d *decoded, depth int) error {
	for _, w := range d.words {
		a := w.assign
		if a == nil {
			continue
		}
		switch a.Name {
		case "MAKEFLAGS", "GNUMAKEFLAGS", "MAKEFILES":
		default:
			continue
		}
		if a.Op == "!=" {
			return perr("%s%s!= runs a shell command whose output build-service cannot check; give %s a literal value", srcPrefix(src), a.Name, a.Name)
		}
		sub := src + ":" + a.Name
		if src == "argv" {
			sub = "argv:" + a.Name
		}
		if a.Name == "MAKEFILES" {
			if err := p.addMakefiles(src, a.Value); err != nil {
				return err
			}
			continue
		}
		if err := p.addFlags(sub, a.Value, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (p *plan) addFlags(src, value string, depth int) error {
	if depth > maxFlagsDepth {
		return perr("MAKEFLAGS assignments nested more than %d deep in %s", maxFlagsDepth, src)
	}
	if strings.Contains(value, "$") {
		return perr("%s refers to a make variable ($), which build-service cannot check; give it a literal value", src)
	}
	if err := checkArgBytes(src, value); err != nil {
		return err
	}
	d, err := decodeSwitches(splitMakeflags(value), true, src)
	if err != nil {
		return err
	}
	p.flags = append(p.flags, source{src, d})
	return p.nested(src, d, depth)
}

func (p *plan) addMakefiles(src, value string) error {
	from := src
	if src == "MAKEFILES" {
		from = "the environment"
	}
	if strings.Contains(value, "$") {
		return perr("MAKEFILES (from %s) refers to a make variable ($), which build-service cannot check; list the files literally", from)
	}
	if err := checkArgBytes("MAKEFILES", value); err != nil {
		return err
	}
	for _, w := range strings.Fields(value) {
		if strings.HasPrefix(w, "~") {
			return perr("MAKEFILES entry %q starts with \"~\"; write the path out", w)
		}
	}
	p.makefiles = append(p.makefiles, makefilesValue{src, value})
	return nil
}

// ErrParse is matched by errors.Is for a make command line build-service
// refuses (the message is in MakeFacts.ParseError).
var ErrParse = errors.New("make command line refused")

func (e *parseError) Is(target error) bool { return target == ErrParse }

// ParseArgs decodes a make command line without touching the file system:
// the canonical option names, assignments and targets, or the ParseError
// message. It is what FuzzParse exercises.
func ParseArgs(args []string, env map[string]string) (options []string, assignments []Assignment, targets []string, err error) {
	pl := parseRequest(protocol.Request{Args: args, Env: env})
	if pl.err != nil {
		return nil, nil, nil, pl.err
	}
	mf := &MakeFacts{}
	(&Mapper{}).fillWords(mf, pl)
	return mf.Options, mf.Assignments, mf.Targets, nil
}
