package mapper

import (
	"fmt"
	"strconv"
	"strings"
)

// This file mirrors GNU make 4.3's command-line decoding: main.c's switch
// table, glibc getopt_long in RETURN_IN_ORDER mode (optstring starting with
// '-'), decode_switches' post-processing per switch type, and
// parse_variable_definition for non-option words. Anything make would
// reject, and a few things make accepts but nobody can check statically
// (computed variable names, "~" paths, make's internal jobserver options),
// become a ParseError.

type optKind int

const (
	kFlag optKind = iota
	kFlagOff
	kIgnore
	kString
	kStrlist
	kFilename
	kPosInt
	kFloat
)

type makeOpt struct {
	short    byte   // 0: long only
	long     string // "": short only (make gives such options an empty long name)
	kind     optKind
	optional bool   // make's noarg_value != 0: the argument is optional
	noarg    string // value used when an optional string argument is absent
	env      bool   // honoured when it comes from MAKEFLAGS
	internal bool   // make's own plumbing between parent and sub-make: refused
}

// makeOpts is make 4.3's switches[] in table order (the order getopt lists
// ambiguous candidates in).
var makeOpts = []*makeOpt{
	{short: 'b', kind: kIgnore},
	{short: 'B', long: "always-make", kind: kFlag, env: true},
	{short: 'd', kind: kFlag, env: true},
	{short: 'e', long: "environment-overrides", kind: kFlag, env: true},
	{short: 'E', long: "eval", kind: kStrlist, env: true},
	{short: 'h', long: "help", kind: kFlag},
	{short: 'i', long: "ignore-errors", kind: kFlag, env: true},
	{short: 'k', long: "keep-going", kind: kFlag, env: true},
	{short: 'L', long: "check-symlink-times", kind: kFlag, env: true},
	{short: 'm', kind: kIgnore},
	{short: 'n', long: "just-print", kind: kFlag, env: true},
	{short: 'p', long: "print-data-base", kind: kFlag, env: true},
	{short: 'q', long: "question", kind: kFlag, env: true},
	{short: 'r', long: "no-builtin-rules", kind: kFlag, env: true},
	{short: 'R', long: "no-builtin-variables", kind: kFlag, env: true},
	{short: 's', long: "silent", kind: kFlag, env: true},
	{short: 'S', long: "no-keep-going", kind: kFlagOff, env: true},
	{short: 't', long: "touch", kind: kFlag, env: true},
	{short: 'v', long: "version", kind: kFlag, env: true},
	{short: 'w', long: "print-directory", kind: kFlag, env: true},
	{short: 'C', long: "directory", kind: kFilename},
	{short: 'f', long: "file", kind: kFilename},
	{short: 'I', long: "include-dir", kind: kFilename, env: true},
	{short: 'j', long: "jobs", kind: kPosInt, optional: true, env: true},
	{short: 'l', long: "load-average", kind: kFloat, optional: true, env: true},
	{short: 'o', long: "old-file", kind: kFilename},
	{short: 'O', long: "output-sync", kind: kString, optional: true, noarg: "target", env: true},
	{short: 'W', long: "what-if", kind: kFilename},
	{long: "debug", kind: kStrlist, optional: true, noarg: "basic", env: true},
	{long: "jobserver-auth", kind: kString, env: true, internal: true},
	{long: "trace", kind: kFlag, env: true},
	{long: "no-print-directory", kind: kFlag, env: true},
	{long: "warn-undefined-variables", kind: kFlag, env: true},
	{long: "sync-mutex", kind: kString, env: true, internal: true},
	{long: "no-silent", kind: kFlagOff, env: true},
	{long: "jobserver-fds", kind: kString, env: true, internal: true},
}

type longOpt struct {
	name string
	opt  *makeOpt
}

// longOpts is getopt's long_options: every switch (empty name when it has
// no long form, exactly as make builds it) followed by the aliases.
var longOpts = func() []longOpt {
	var l []longOpt
	for _, o := range makeOpts {
		l = append(l, longOpt{o.long, o})
	}
	for _, a := range []struct{ name, to string }{
		{"quiet", "silent"}, {"stop", "no-keep-going"}, {"new-file", "what-if"},
		{"assume-new", "what-if"}, {"assume-old", "old-file"}, {"max-load", "load-average"},
		{"dry-run", "just-print"}, {"recon", "just-print"}, {"makefile", "file"},
	} {
		l = append(l, longOpt{a.name, optByLong(a.to)})
	}
	return l
}()

func optByLong(name string) *makeOpt {
	for _, o := range makeOpts {
		if o.long == name {
			return o
		}
	}
	panic("mapper: no make option " + name)
}

func optByShort(c byte) *makeOpt {
	for _, o := range makeOpts {
		if o.short == c && c != 0 {
			return o
		}
	}
	return nil
}

// hasArg is getopt's has_arg for an option.
func (o *makeOpt) hasArg() int {
	switch o.kind {
	case kFlag, kFlagOff, kIgnore:
		return 0
	}
	if o.optional {
		return 2
	}
	return 1
}

// Name is the option's canonical spelling in facts: "--long" or "-c".
func (o *makeOpt) Name() string {
	if o.long != "" {
		return "--" + o.long
	}
	return "-" + string(o.short)
}

// spelled is how the user would recognise an option in a message.
func (o *makeOpt) spelled() string {
	if o.short != 0 && o.long != "" {
		return fmt.Sprintf("-%c/--%s", o.short, o.long)
	}
	return o.Name()
}

// optUse is one decoded switch occurrence.
type optUse struct {
	opt    *makeOpt
	arg    string
	hasArg bool
	doit   bool // false for switches make ignores when they come from MAKEFLAGS
}

// word is a non-option argument: a variable definition or a target.
type word struct {
	text   string
	assign *Assignment // nil for a target
}

// decoded is what one decode_switches pass produced.
type decoded struct {
	opts  []optUse
	words []word
}

// parseError is the one-line message a user sees.
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }

func perr(format string, a ...any) error { return &parseError{fmt.Sprintf(format, a...)} }

// checkArgBytes refuses bytes that no path or name we pass on should hold:
// a NUL cannot reach exec at all, and a newline or carriage return would let
// one argument look like two lines in every log and message.
func checkArgBytes(where, a string) error {
	if i := strings.IndexAny(a, "\x00\n\r"); i >= 0 {
		what := map[byte]string{0: "a NUL byte", '\n': "a newline", '\r': "a carriage return"}[a[i]]
		return perr("%s %q contains %s, which build-service does not pass to make", where, a, what)
	}
	return nil
}

// decodeSwitches is make's decode_switches over args (without argv[0]).
// env is true for words split out of MAKEFLAGS/GNUMAKEFLAGS; where names
// the source for messages.
func decodeSwitches(args []string, env bool, where string) (*decoded, error) {
	d := &decoded{}
	i := 0
	for i < len(args) {
		a := args[i]
		if err := checkArgBytes(wordName(where), a); err != nil {
			return nil, err
		}
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			// RETURN_IN_ORDER: a non-option (including "-") comes back as 1.
			if err := d.nonSwitch(a, env); err != nil {
				return nil, err
			}
			i++
			continue
		}
		if strings.HasPrefix(a, "--") {
			o, arg, has, next, err := parseLong(args, i, where)
			if err != nil {
				return nil, err
			}
			i = next
			if i, err = d.apply(o, arg, has, args, i, env, where); err != nil {
				return nil, err
			}
			continue
		}
		// A cluster of short options.
		i++
		cl := a[1:]
		for j := 0; j < len(cl); j++ {
			c := cl[j]
			o := optByShort(c)
			if o == nil {
				in := ""
				if len(a) > 2 {
					in = fmt.Sprintf(" (in %q)", a)
				}
				return nil, perr("%smake option \"-%c\"%s is not recognised; see make --help", srcPrefix(where), c, in)
			}
			rest := cl[j+1:]
			var arg string
			var has bool
			switch o.hasArg() {
			case 1:
				if rest != "" {
					arg, has = rest, true
				} else if i < len(args) {
					arg, has = args[i], true
					if err := checkArgBytes(wordName(where), arg); err != nil {
						return nil, err
					}
					i++
				} else {
					return nil, perr("%smake option \"-%c\" needs an argument (%s)", srcPrefix(where), c, argHint(o))
				}
			case 2:
				if rest != "" {
					arg, has = rest, true
				}
			}
			var err error
			if i, err = d.apply(o, arg, has, args, i, env, where); err != nil {
				return nil, err
			}
			if has && rest != "" {
				break
			}
		}
	}
	// After "--", getopt stops; make still hands every word to
	// handle_non_switch_argument, so V=x after -- is an assignment.
	for ; i < len(args); i++ {
		if err := checkArgBytes(wordName(where), args[i]); err != nil {
			return nil, err
		}
		if err := d.nonSwitch(args[i], env); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// wordName names one word of a source in messages.
func wordName(where string) string {
	if where == "argv" {
		return "argument"
	}
	return where + " word"
}

func srcPrefix(where string) string {
	if where == "argv" {
		return ""
	}
	return "in " + where + ": "
}

func argHint(o *makeOpt) string {
	switch o.kind {
	case kFilename:
		if o.short == 'C' || o.short == 'I' {
			return "a directory"
		}
		return "a file name"
	case kPosInt:
		return "a number"
	}
	return "a value"
}

// parseLong is glibc's process_long_option for args[i] ("--name[=arg]").
func parseLong(args []string, i int, where string) (o *makeOpt, arg string, has bool, next int, err error) {
	a := args[i]
	body := a[2:]
	name, val, eq := strings.Cut(body, "=")
	var found *longOpt
	for k := range longOpts {
		if longOpts[k].name == name {
			found = &longOpts[k]
			break
		}
	}
	if found == nil {
		var cands []*longOpt
		ambiguous := false
		for k := range longOpts {
			lo := &longOpts[k]
			if !strings.HasPrefix(lo.name, name) {
				continue
			}
			if len(cands) > 0 && (cands[0].opt.hasArg() != lo.opt.hasArg() || cands[0].opt != lo.opt) {
				ambiguous = true
			}
			cands = append(cands, lo)
		}
		if len(cands) == 0 {
			return nil, "", false, 0, perr("%smake option \"--%s\" is not recognised; see make --help", srcPrefix(where), name)
		}
		if ambiguous {
			var names []string
			for _, c := range cands {
				names = append(names, "--"+c.name)
			}
			return nil, "", false, 0, perr("%smake option \"--%s\" is ambiguous (%s); spell it out", srcPrefix(where), name, strings.Join(names, ", "))
		}
		found = cands[0]
	}
	o = found.opt
	next = i + 1
	switch o.hasArg() {
	case 0:
		if eq {
			return nil, "", false, 0, perr("%smake option \"--%s\" does not take an argument (%q)", srcPrefix(where), found.name, a)
		}
	case 1:
		if eq {
			arg, has = val, true
		} else if next < len(args) {
			arg, has = args[next], true
			if err := checkArgBytes(wordName(where), arg); err != nil {
				return nil, "", false, 0, err
			}
			next++
		} else {
			return nil, "", false, 0, perr("%smake option \"--%s\" needs an argument (%s)", srcPrefix(where), found.name, argHint(o))
		}
	case 2:
		if eq {
			arg, has = val, true
		}
	}
	return o, arg, has, next, nil
}

// apply is the body of decode_switches' switch over the option type; it may
// consume the next word (make's -j N / -l N special cases) and returns the
// new index.
func (d *decoded) apply(o *makeOpt, arg string, has bool, args []string, i int, env bool, where string) (int, error) {
	doit := !env || o.env
	p := srcPrefix(where)
	if o.internal {
		return i, perr("%smake option %s is make's internal plumbing and is not accepted", p, o.Name())
	}
	switch o.kind {
	case kString, kStrlist, kFilename:
		if !doit {
			break
		}
		if !has {
			arg, has = o.noarg, true
		} else if arg == "" {
			return i, perr("%smake option %s needs a non-empty argument", p, o.spelled())
		}
		if o.kind == kFilename && strings.HasPrefix(arg, "~") {
			return i, perr("%s%s %q starts with \"~\", which make would expand on the host; write the path out", p, o.spelled(), arg)
		}
		if o.kind == kFilename && o.short == 'f' && arg == "-" {
			return i, perr("%s-f - (makefile from standard input) is not supported: the build's standard input is empty", p)
		}
		switch o.long {
		case "output-sync":
			switch arg {
			case "none", "line", "target", "recurse":
			default:
				return i, perr("%s--output-sync type %q is not one of none, line, target, recurse", p, arg)
			}
		case "debug":
			if err := checkDebugFlags(arg); err != nil {
				return i, perr("%s%v", p, err)
			}
		}
	case kPosInt:
		if !has && i < len(args) && allDigits(args[i]) {
			arg, has = args[i], true
			i++
		}
		if !doit || !has {
			break
		}
		n, err := strconv.Atoi(arg)
		if err != nil || !allDigits(arg) || n < 1 {
			return i, perr("%smake option -j/--jobs needs a positive whole number, not %q", p, arg)
		}
		if n > maxJobs {
			return i, perr("%smake option -j/--jobs %s is more than %d jobs", p, arg, maxJobs)
		}
		arg = strconv.Itoa(n)
	case kFloat:
		if !has && i < len(args) && args[i] != "" && (isDigit(args[i][0]) || args[i][0] == '.') {
			arg, has = args[i], true
			i++
		}
		if doit && has {
			if f, err := strconv.ParseFloat(arg, 64); err != nil || f != f {
				return i, perr("%smake option -l/--load-average needs a number, not %q", p, arg)
			}
		}
	}
	if o.kind == kFilename || o.kind == kString || o.kind == kStrlist {
		if has {
			if err := checkArgBytes(o.spelled()+" argument", arg); err != nil {
				return i, err
			}
		}
	}
	d.opts = append(d.opts, optUse{opt: o, arg: arg, hasArg: has, doit: doit})
	return i, nil
}

const maxJobs = 1 << 20

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// allDigits mirrors make's loop, which an empty word passes too.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// checkDebugFlags is decode_debug_flags: only the first letter of each
// comma/space separated word counts.
func checkDebugFlags(s string) error {
	p := 0
	for {
		if p >= len(s) {
			return fmt.Errorf("--debug flags %q: unknown debug level specification", s)
		}
		switch c := s[p] | 0x20; c {
		case 'a', 'b', 'i', 'j', 'm', 'n', 'v':
		default:
			return fmt.Errorf("--debug flags %q: unknown debug level %q (use a, b, i, j, m, n or v)", s, s[p:])
		}
		for p++; p < len(s); p++ {
			if s[p] == ',' || s[p] == ' ' {
				p++
				break
			}
		}
		if p >= len(s) {
			return nil
		}
	}
}

// nonSwitch is handle_non_switch_argument.
func (d *decoded) nonSwitch(a string, env bool) error {
	if a == "-" {
		return nil
	}
	as, ok, err := parseAssignment(a)
	if err != nil {
		return err
	}
	if ok {
		d.words = append(d.words, word{text: a, assign: as})
		return nil
	}
	if env {
		// make ignores targets in MAKEFLAGS.
		return nil
	}
	if strings.HasPrefix(a, "~") {
		return perr("target %q starts with \"~\", which make would expand on the host; write it out", a)
	}
	d.words = append(d.words, word{text: a})
	return nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// parseAssignment is read.c's parse_variable_definition as used for
// command-line words: ok=false means the word is a target.
func parseAssignment(line string) (*Assignment, bool, error) {
	p := 0
	for p < len(line) && isBlank(line[p]) {
		p++
	}
	start := p
	wspace := false
	end := -1
	var op string
	for {
		if p >= len(line) {
			return nil, false, nil
		}
		c := line[p]
		p++
		if c == '#' {
			return nil, false, nil
		}
		if c == '$' {
			if p >= len(line) {
				return nil, false, nil
			}
			c = line[p]
			p++
			var closep byte
			switch c {
			case '(':
				closep = ')'
			case '{':
				closep = '}'
			default:
				continue
			}
			for count := 1; p < len(line); p++ {
				if line[p] == closep {
					count--
					if count == 0 {
						p++
						break
					}
				}
				if line[p] == c {
					count++
				}
			}
			continue
		}
		if isBlank(c) {
			wspace = true
			end = p - 1
			for p < len(line) && isBlank(line[p]) {
				p++
			}
			if p >= len(line) {
				return nil, false, nil
			}
			c = line[p]
			p++
		}
		if c == '=' {
			op = "="
			if !wspace {
				end = p - 1
			}
			break
		}
		if p < len(line) && line[p] == '=' {
			switch c {
			case ':', '+', '?', '!':
				op = string(c) + "="
			default:
				if wspace {
					return nil, false, nil
				}
				continue
			}
			if !wspace {
				end = p - 1
			}
			p++
			break
		}
		if c == ':' {
			if !(p+1 < len(line) && line[p] == ':' && line[p+1] == '=') {
				return nil, false, nil
			}
			op = "::="
			if !wspace {
				end = p - 1
			}
			p += 2
			break
		}
		if wspace {
			return nil, false, nil
		}
	}
	name := line[start:end]
	for p < len(line) && isBlank(line[p]) {
		p++
	}
	value := line[p:]
	if strings.Contains(name, "$") {
		return nil, false, perr("variable name %q in %q contains \"$\", which make would expand; use a literal name", name, line)
	}
	if name == "" {
		return nil, false, perr("%q has an empty variable name", line)
	}
	return &Assignment{Name: name, Op: op, Value: value}, true, nil
}

// splitMakeflags is decode_env_switches' word splitting: blanks separate
// words, a backslash quotes the next character, and a first word that is
// neither an option nor an assignment is a cluster of single-letter flags.
func splitMakeflags(value string) []string {
	i := 0
	for i < len(value) && isBlank(value[i]) {
		i++
	}
	value = value[i:]
	if value == "" {
		return nil
	}
	var words []string
	var cur strings.Builder
	for i := 0; i < len(value); {
		c := value[i]
		if c == '\\' && i+1 < len(value) {
			i++
			c = value[i]
		} else if isBlank(c) {
			words = append(words, cur.String())
			cur.Reset()
			for i < len(value) && isBlank(value[i]) {
				i++
			}
			continue
		}
		cur.WriteByte(c)
		i++
	}
	words = append(words, cur.String())
	if !strings.HasPrefix(words[0], "-") && !strings.Contains(words[0], "=") {
		words[0] = "-" + words[0]
	}
	return words
}
