package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

const levelList = "debug, info, warn, error"

func validLevel(s string) bool {
	switch s {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

var (
	commandNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	groupNameRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$`)
)

// maxSocketPath is the longest path a sockaddr_un can hold (108 bytes
// including the terminating NUL).
const maxSocketPath = 107

// envRefusal says why a variable may never be on the environment allowlist,
// or "" when it may. HOME, USER, LOGNAME and PATH are the service's to set;
// the others would let a client change how every program or shell in the
// build behaves, out of the policy's sight. MAKEFLAGS, GNUMAKEFLAGS and
// MAKEFILES may be listed: the mapper parses them and the policy confines
// what they name.
func envRefusal(name string) string {
	switch name {
	case "HOME", "USER", "LOGNAME":
		return "is set by the service from the host account; remove it"
	case "PATH":
		return "is set by the service from build.environment.path; remove it"
	case "BASH_ENV", "ENV":
		return "must never come from a client: it makes every shell the build starts run a file of the client's choosing"
	case "IFS", "CDPATH", "SHELLOPTS", "BASHOPTS", "PS4", "GLOBIGNORE", "PROMPT_COMMAND", "SHELL":
		return "must never come from a client: it changes how the shells that run make's recipes parse and run commands"
	case "GCONV_PATH", "LOCPATH", "NLSPATH", "MALLOC_TRACE", "HOSTALIASES", "RESOLV_HOST_CONF", "RES_OPTIONS", "LOCALDOMAIN":
		return "must never come from a client: the C library loads files or changes behaviour by it in every program of the build"
	case "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
		return "belongs to the daemon's systemd interface; a build must never see it"
	}
	if strings.HasPrefix(name, "LD_") {
		return "must never come from a client: it changes which libraries every program of the build loads"
	}
	return ""
}

type validator struct {
	src   *source
	probs []error
}

func (v *validator) add(key, format string, args ...any) {
	v.addAt(key, key, format, args...)
}

// addAt reports a problem with key, placed at the line of lineKey (a more
// precise key than the one named, such as one entry of a table).
func (v *validator) addAt(lineKey, key, format string, args ...any) {
	p := &Problem{Key: key, Msg: key + ": " + fmt.Sprintf(format, args...)}
	if v.src != nil {
		p.File = v.src.name
		p.Line = v.line(lineKey)
		if p.Line == 0 {
			p.Line = v.line(key)
		}
	}
	v.probs = append(v.probs, p)
}

// line is where key is written; for a key missing from an array entry
// ([[build.path_mappings]] without host_template), where the entry starts.
// A key left at its default has no line: pointing at its table would blame
// a line that does not hold the value.
func (v *validator) line(key string) int {
	if n, ok := v.src.lines[key]; ok {
		return n
	}
	if i := strings.LastIndex(key, "]."); i > 0 {
		return v.src.lines[key[:i+1]]
	}
	return 0
}

// Validate checks every key and returns nil or one error holding one
// Problem per thing wrong (joined with errors.Join, one per line), each
// naming the key and, for a config read from a file, its line.
func (c *Config) Validate() error {
	v := &validator{src: c.src}

	if c.SchemaVersion != SchemaVersion {
		v.add("schema_version", "%q is not supported; this build-service reads schema_version %q", c.SchemaVersion, SchemaVersion)
	}

	s := c.Service
	switch {
	case s.SocketPath == "":
		v.add("service.socket_path", "must not be empty")
	case !filepath.IsAbs(s.SocketPath):
		v.add("service.socket_path", "%q must be an absolute path", s.SocketPath)
	case len(s.SocketPath) > maxSocketPath:
		v.add("service.socket_path", "%d bytes is longer than a unix socket path can be (%d)", len(s.SocketPath), maxSocketPath)
	case filepath.Clean(s.SocketPath) != s.SocketPath:
		v.add("service.socket_path", "%q must be a clean path (no trailing \"/\", \"..\", \".\" or \"//\")", s.SocketPath)
	}
	if s.SocketGroup != "" && !groupNameRE.MatchString(s.SocketGroup) {
		v.add("service.socket_group", "%q is not a valid group name", s.SocketGroup)
	}
	if m, err := parseMode(s.SocketMode); err != nil {
		v.add("service.socket_mode", "%v", err)
	} else if m&0o002 != 0 {
		v.add("service.socket_mode", "%q lets every local user connect (world-writable); use \"0660\" and service.socket_group", s.SocketMode)
	}
	v.atLeast("service.request_timeout_sec", s.RequestTimeoutSec, 1)
	v.atLeast("service.max_connections", s.MaxConnections, 1)
	v.atLeast("service.max_connections_per_user", s.MaxConnectionsPerUser, 1)
	if s.MaxConnections >= 1 && s.MaxConnectionsPerUser > s.MaxConnections {
		v.add("service.max_connections_per_user", "%d must not exceed service.max_connections (%d)", s.MaxConnectionsPerUser, s.MaxConnections)
	}
	v.atLeast("service.shutdown_grace_sec", s.ShutdownGraceSec, 0)

	b := c.Build
	rootOK := v.absPath("build.workspace_root", b.WorkspaceRoot)
	root := b.WorkspaceRoot
	if !rootOK {
		root = "/workspace-root"
	}
	v.template("build.path_mapping.container_template", b.PathMapping.ContainerTemplate, root, false)
	v.template("build.path_mapping.host_template", b.PathMapping.HostTemplate, root, true)
	if b.PathMapping.Mode != "" && b.PathMapping.Mode != "rw" {
		v.add("build.path_mapping.mode", "%q: the workspace mapping is always read-write; mode is for [[build.path_mappings]] entries", b.PathMapping.Mode)
	}
	containers := map[string]string{expandForCheck(b.PathMapping.ContainerTemplate, root): "build.path_mapping"}
	for i, m := range b.PathMappings {
		key := fmt.Sprintf("build.path_mappings[%d]", i)
		v.template(key+".container_template", m.ContainerTemplate, root, false)
		v.template(key+".host_template", m.HostTemplate, root, true)
		switch m.Mode {
		case "", "rw", "ro":
		default:
			v.add(key+".mode", "%q must be \"rw\" or \"ro\"", m.Mode)
		}
		if m.ContainerTemplate != "" {
			ct := expandForCheck(m.ContainerTemplate, root)
			if other, dup := containers[ct]; dup {
				v.add(key+".container_template", "%q maps the same container path as %s", m.ContainerTemplate, other)
			} else {
				containers[ct] = key
			}
		}
	}

	if len(b.Commands) == 0 {
		v.add("build.commands", "at least one command is required, e.g. make = \"/usr/bin/make\"")
	}
	names := make([]string, 0, len(b.Commands))
	for n := range b.Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !commandNameRE.MatchString(n) {
			v.addAt("build.commands."+n, "build.commands", "%q is not a plain command name (a letter or digit, then letters, digits, \".\", \"_\", \"+\" or \"-\")", n)
			continue
		}
		v.absPath("build.commands."+n, b.Commands[n])
	}

	t := b.Timeouts
	v.atLeast("build.timeouts.default_sec", t.DefaultSec, 1)
	if t.DefaultSec >= 1 && t.MaxSec < t.DefaultSec {
		v.add("build.timeouts.max_sec", "%d must be at least build.timeouts.default_sec (%d)", t.MaxSec, t.DefaultSec)
	}
	v.atLeast("build.timeouts.kill_grace_sec", t.KillGraceSec, 1)

	seen := map[string]bool{}
	for _, n := range b.Environment.Allow {
		switch {
		case !envNameRE.MatchString(n):
			v.add("build.environment.allow", "%q is not a valid variable name", n)
		case envRefusal(n) != "":
			v.add("build.environment.allow", "%q %s", n, envRefusal(n))
		case seen[n]:
			v.add("build.environment.allow", "%q is listed twice", n)
		}
		seen[n] = true
	}
	if b.Environment.Path == "" {
		v.add("build.environment.path", "must not be empty")
	} else {
		for _, d := range strings.Split(b.Environment.Path, ":") {
			if !filepath.IsAbs(d) {
				v.add("build.environment.path", "element %q is not an absolute directory (an empty or relative element makes the build search its working directory)", d)
			}
		}
	}

	for _, g := range b.Identity.DenyGroups {
		if !groupNameRE.MatchString(g) {
			v.add("build.identity.deny_groups", "%q is not a valid group name", g)
		}
	}

	l := b.Limits
	if l.PidsMax < 0 {
		v.add("build.limits.pids_max", "%d must not be negative (0 means no limit)", l.PidsMax)
	}
	if _, err := ParseSize(l.MemoryMax); err != nil {
		v.add("build.limits.memory_max", "%v", err)
	}
	if err := checkCPUMax(l.CPUMax); err != nil {
		v.add("build.limits.cpu_max", "%v", err)
	}
	v.atLeast("build.limits.max_builds_per_user", l.MaxBuildsPerUser, 1)
	v.atLeast("build.limits.max_builds_total", l.MaxBuildsTotal, 1)
	if l.MaxBuildsTotal >= 1 && l.MaxBuildsPerUser > l.MaxBuildsTotal {
		v.add("build.limits.max_builds_per_user", "%d must not exceed build.limits.max_builds_total (%d)", l.MaxBuildsPerUser, l.MaxBuildsTotal)
	}

	if b.Sandbox.Enabled {
		// Accepting it would promise an isolation no build gets.
		v.add("build.sandbox.enabled", "true is not supported yet: the per-build sandbox is not implemented; set it to false")
	}
	for i, p := range b.Sandbox.Writable {
		v.template(fmt.Sprintf("build.sandbox.writable[%d]", i), p, root, false)
	}
	for i, p := range b.Sandbox.Readable {
		v.template(fmt.Sprintf("build.sandbox.readable[%d]", i), p, root, false)
	}

	if c.Policy.Directory != "" {
		v.absPath("policy.directory", c.Policy.Directory)
	}

	g := c.Logging
	if !validLevel(g.Level) {
		v.add("logging.level", "%q must be one of %s", g.Level, levelList)
	}
	if g.Directory != "" {
		v.absPath("logging.directory", g.Directory)
	}
	v.atLeast("logging.max_size_mb", g.MaxSizeMB, 1)
	v.atLeast("logging.max_backups", g.MaxBackups, 0)
	switch dl := g.DecisionLog; {
	case dl == "":
	case strings.HasPrefix(dl, "/"):
		v.absPath("logging.decision_log", dl)
	case strings.Contains(dl, "/") || dl == "." || dl == "..":
		v.add("logging.decision_log", "%q must be a file name (in logging.directory) or an absolute path", dl)
	case g.Directory == "":
		v.add("logging.decision_log", "%q is a file name in logging.directory, which is empty; give an absolute path or set logging.directory", dl)
	}
	if !g.Console && g.Directory == "" {
		v.add("logging.console", "false while logging.directory is empty: the daemon would log nowhere")
	}

	if len(v.probs) > maxProblems {
		more := len(v.probs) - maxProblems
		v.probs = append(v.probs[:maxProblems], &Problem{Msg: fmt.Sprintf("... and %d more problems", more)})
		if v.src != nil {
			v.probs[maxProblems].(*Problem).File = v.src.name
		}
	}
	return errors.Join(v.probs...)
}

// maxProblems bounds the problems listed by one Validate: a file with
// thousands of them is fixed a screenful at a time.
const maxProblems = 50

func (v *validator) atLeast(key string, n, min int) {
	if n >= min {
		return
	}
	if min == 0 {
		v.add(key, "%d must not be negative", n)
		return
	}
	v.add(key, "%d must be at least %d", n, min)
}

// absPath checks that p is a clean absolute path and reports whether it is.
func (v *validator) absPath(key, p string) bool {
	switch {
	case p == "":
		v.add(key, "must not be empty")
	case !filepath.IsAbs(p):
		v.add(key, "%q must be an absolute path", p)
	case filepath.Clean(p) != p:
		v.add(key, "%q must be a clean absolute path (no trailing \"/\", \"..\", \".\" or \"//\")", p)
	default:
		return true
	}
	return false
}

// template checks a path template: only known placeholders, {user} when
// needUser, and an absolute clean path once expanded.
func (v *validator) template(key, tmpl, root string, needUser bool) {
	if tmpl == "" {
		v.add(key, "must not be empty")
		return
	}
	rest := tmpl
	for {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			break
		}
		if rest[i] == '}' {
			v.add(key, "%q has a \"}\" without a matching \"{\"", tmpl)
			return
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			v.add(key, "%q has a \"{\" without a matching \"}\"", tmpl)
			return
		}
		ph := rest[i : i+j+1]
		if ph != PlaceholderUser && ph != PlaceholderWorkspaceRoot {
			v.add(key, "%q uses the unknown placeholder %s (known: {user}, {workspace_root})", tmpl, ph)
			return
		}
		rest = rest[i+j+1:]
	}
	if needUser && !strings.Contains(tmpl, PlaceholderUser) {
		v.add(key, "%q must contain {user}, so that every user gets a host directory of their own", tmpl)
		return
	}
	p := expandForCheck(tmpl, root)
	switch {
	case !filepath.IsAbs(p):
		v.add(key, "%q must be an absolute path once expanded (got %q)", tmpl, p)
	case filepath.Clean(p) != p:
		v.add(key, "%q must be a clean path once expanded (no trailing \"/\", \"..\", \".\" or \"//\"; got %q)", tmpl, p)
	}
}

// expandForCheck expands a template for a sample user; the mapper does the
// real expansion per caller.
func expandForCheck(tmpl, root string) string {
	return strings.NewReplacer(PlaceholderUser, "user", PlaceholderWorkspaceRoot, root).Replace(tmpl)
}

// checkCPUMax accepts "" or cgroup v2 cpu.max syntax "QUOTA [PERIOD]" with
// QUOTA "max" or 1000.. microseconds and PERIOD 1000..1000000.
func checkCPUMax(s string) error {
	if s == "" {
		return nil
	}
	bad := fmt.Errorf("%q must be \"\" (no limit) or \"QUOTA PERIOD\" in microseconds, e.g. \"50000 100000\" for half a CPU or \"max 100000\"", s)
	f := strings.Fields(s)
	if len(f) < 1 || len(f) > 2 || strings.Join(f, " ") != s {
		return bad
	}
	if f[0] != "max" {
		q, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || q < 1000 {
			return bad
		}
	}
	if len(f) == 2 {
		p, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || p < 1000 || p > 1000000 {
			return bad
		}
	}
	return nil
}
