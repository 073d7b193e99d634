package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// ErrInvalid matches (errors.Is) every error about a config's content:
// syntax, unknown keys, wrong types and failed validation. An error reading
// the file does not match it.
var ErrInvalid = errors.New("invalid config")

// Problem is one thing wrong with a config. Its message reads
// "FILE:LINE: MSG" (or "FILE: MSG" when the key is absent from the file and
// the problem is in a default, or just "MSG" for a Config not read from a
// file). Msg names the key.
type Problem struct {
	File string // name given to Parse, "" for a Config built in Go
	Line int    // 1-based; 0 when the key is not in the file
	Key  string // dotted key, e.g. "build.timeouts.max_sec"; "" for a syntax error
	Msg  string
}

func (p *Problem) Error() string {
	switch {
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	case p.File != "":
		return p.File + ": " + p.Msg
	default:
		return p.Msg
	}
}

// Is makes every Problem match ErrInvalid.
func (p *Problem) Is(target error) bool { return target == ErrInvalid }

// source remembers where a Config came from, so that Validate can put a
// line number on a problem found after decoding.
type source struct {
	name  string
	lines map[string]int // dotted key (with [i] for array entries) -> first line
}

func decode(data []byte, name string) (*Config, error) {
	lines, err := keyLines(data)
	if err != nil {
		// The decoder below reports the same syntax error with go-toml's
		// wording and position; keyLines only needs a well-formed file.
		lines = map[string]int{}
	}
	// go-toml decodes a table into an existing map by adding keys, which
	// would keep the default "make" allowed in a file whose
	// [build.commands] lists only cmake. So lists and tables start empty
	// and get their default only when the file does not mention them.
	c := Default()
	d := Default()
	c.Build.Commands = map[string]string{}
	c.Build.PathMappings = nil
	lists := []struct {
		key      string
		field    *[]string
		fallback []string
	}{
		{"build.environment.allow", &c.Build.Environment.Allow, d.Build.Environment.Allow},
		{"build.identity.deny_groups", &c.Build.Identity.DenyGroups, d.Build.Identity.DenyGroups},
		{"build.sandbox.writable", &c.Build.Sandbox.Writable, d.Build.Sandbox.Writable},
		{"build.sandbox.readable", &c.Build.Sandbox.Readable, d.Build.Sandbox.Readable},
	}
	for _, l := range lists {
		*l.field = nil
	}

	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, translate(err, name)
	}

	if _, ok := lines["build.commands"]; !ok {
		c.Build.Commands = d.Build.Commands
	}
	if c.Build.PathMappings == nil {
		c.Build.PathMappings = []PathMapping{}
	}
	for _, l := range lists {
		if _, ok := lines[l.key]; !ok {
			*l.field = l.fallback
		}
		// An empty TOML array decodes to nil; callers see [] either way.
		if *l.field == nil {
			*l.field = []string{}
		}
	}
	c.src = &source{name: name, lines: lines}
	return c, nil
}

var typeErrRE = regexp.MustCompile(`^cannot decode TOML (\w+) into`)

// translate turns go-toml's errors into Problems naming file, line and key.
func translate(err error, name string) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var probs []error
		for i := range strict.Errors {
			if i == maxUnknownReported {
				probs = append(probs, &Problem{File: name, Line: probs[len(probs)-1].(*Problem).Line,
					Msg: fmt.Sprintf("... and %d more unknown keys", len(strict.Errors)-i)})
				break
			}
			e := &strict.Errors[i]
			line, _ := e.Position()
			key := strings.Join(e.Key(), ".")
			what := "key"
			if _, isTable := knownKeys()[key]; !isTable && strings.Contains(e.Error(), "missing table") {
				what = "table"
			}
			msg := fmt.Sprintf("unknown %s %q", what, key)
			if s := suggest(key); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			probs = append(probs, &Problem{File: name, Line: line, Key: key, Msg: msg})
		}
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].(*Problem).Line < probs[j].(*Problem).Line })
		return errors.Join(probs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		key := strings.Join(de.Key(), ".")
		raw := strings.TrimPrefix(de.Error(), "toml: ")
		if m := typeErrRE.FindStringSubmatch(raw); m != nil && key != "" {
			msg := fmt.Sprintf("%s: wrong type: want %s, got a TOML %s", key, expectedType(key), m[1])
			return &Problem{File: name, Line: line, Key: key, Msg: msg}
		}
		if key != "" && !strings.Contains(raw, "already defined") && !strings.HasPrefix(raw, "expected") {
			return &Problem{File: name, Line: line, Key: key, Msg: key + ": " + raw}
		}
		return &Problem{File: name, Line: line, Msg: fmt.Sprintf("syntax error at column %d: %s", col, raw)}
	}
	return &Problem{File: name, Msg: "decode: " + err.Error()}
}

// knownKeys maps every dotted key of the schema to its Go type. Array
// entries ([[build.path_mappings]]) appear without an index, as go-toml
// names them.
func knownKeys() map[string]reflect.Type { return knownKeysOnce() }

var knownKeysOnce = sync.OnceValue(func() map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			keys[key] = f.Type
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(key, ft)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return keys
})

// expectedType describes the TOML type a key takes, for wrong-type errors.
func expectedType(key string) string {
	keys := knownKeys()
	t, ok := keys[key]
	if !ok {
		// An entry of a table of strings, such as build.commands.make.
		if i := strings.LastIndex(key, "."); i > 0 {
			if pt, ok := keys[key[:i]]; ok && pt.Kind() == reflect.Map {
				t = pt.Elem()
			}
		}
	}
	if t == nil {
		return "another type"
	}
	if ex, ok := stringExamples[key]; ok {
		return describeType(t) + " such as " + ex
	}
	return describeType(t)
}

// stringExamples show the spelling of string keys that people naturally
// write as numbers.
var stringExamples = map[string]string{
	"service.socket_mode":     `"0660"`,
	"build.limits.memory_max": `"8G" or "536870912"`,
	"build.limits.cpu_max":    `"50000 100000"`,
	"schema_version":          `"1"`,
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "an array of tables"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Map:
		return "a table of " + strings.TrimPrefix(describeType(t.Elem()), "a ") + "s"
	case reflect.Struct:
		return "a table"
	}
	return t.String()
}

// maxSuggestLen bounds the edit-distance work for one unknown key: no
// known key is longer than this, so nothing longer is a near miss.
const maxSuggestLen = 64

// maxUnknownReported bounds the unknown keys listed in one error: past a
// few, the file is not a build-service config and more lines do not help.
const maxUnknownReported = 20

// suggest returns the known key an unknown one was most likely meant to be,
// or "": the same leaf name under another table (a key in the wrong
// section), else the closest full key within a small edit distance.
func suggest(unknown string) string {
	if len(unknown) > maxSuggestLen {
		return ""
	}
	keys := knownKeys()
	leaf := unknown[strings.LastIndex(unknown, ".")+1:]
	var sameLeaf []string
	for k := range keys {
		if k[strings.LastIndex(k, ".")+1:] == leaf {
			sameLeaf = append(sameLeaf, k)
		}
	}
	if len(sameLeaf) == 1 {
		return sameLeaf[0]
	}
	// A shortened or lengthened name in the right table: max_size for
	// max_size_mb.
	parent := unknown[:strings.LastIndex(unknown, ".")+1]
	var prefixed []string
	for k := range keys {
		kl := strings.TrimPrefix(k, parent)
		if parent != "" && strings.HasPrefix(k, parent) && !strings.Contains(kl, ".") &&
			(strings.HasPrefix(kl, leaf) || strings.HasPrefix(leaf, kl)) {
			prefixed = append(prefixed, k)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	best, bestD := "", 1<<30
	for k := range keys {
		d := editDistance(unknown, k)
		if d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	limit := len(leaf) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// keyLines maps every key and table of a TOML document to the line it first
// appears on. Entries of arrays of tables get an index:
// "build.path_mappings[1].mode". Every prefix of a key is recorded too, so
// "build.commands" is present when only "build.commands.make" is written.
func keyLines(data []byte) (map[string]int, error) {
	lines := map[string]int{}
	arrayCount := map[string]int{}
	p := &unstable.Parser{}
	p.Reset(data)
	record := func(parts []string, line int) {
		for i := 1; i <= len(parts); i++ {
			k := strings.Join(parts[:i], ".")
			if _, ok := lines[k]; !ok {
				lines[k] = line
			}
		}
	}
	// Parser.Shape counts newlines from the start of the document on every
	// call, quadratic over a file; index them once instead.
	var newlines []int
	for i, b := range data {
		if b == '\n' {
			newlines = append(newlines, i)
		}
	}
	lineOf := func(n *unstable.Node) int {
		off := int(n.Raw.Offset)
		return 1 + sort.Search(len(newlines), func(i int) bool { return newlines[i] >= off })
	}
	keyParts := func(n *unstable.Node) ([]string, int) {
		var parts []string
		line := 0
		it := n.Key()
		for it.Next() {
			k := it.Node()
			if line == 0 {
				line = lineOf(k)
			}
			parts = append(parts, string(k.Data))
		}
		return parts, line
	}
	var keyval func(prefix []string, n *unstable.Node)
	keyval = func(prefix []string, n *unstable.Node) {
		parts, line := keyParts(n)
		full := append(append([]string{}, prefix...), parts...)
		record(full, line)
		v := n.Value()
		switch v.Kind {
		case unstable.InlineTable:
			it := v.Children()
			for it.Next() {
				keyval(full, it.Node())
			}
		case unstable.Array:
			it := v.Children()
			for i := 0; it.Next(); i++ {
				if e := it.Node(); e.Kind == unstable.InlineTable {
					entry := append(append([]string{}, full[:len(full)-1]...), full[len(full)-1]+"["+strconv.Itoa(i)+"]")
					record(entry, lineOf(e))
					et := e.Children()
					for et.Next() {
						keyval(entry, et.Node())
					}
				}
			}
		}
	}
	var prefix []string
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table:
			parts, line := keyParts(n)
			record(parts, line)
			prefix = parts
		case unstable.ArrayTable:
			parts, line := keyParts(n)
			record(parts, line)
			name := strings.Join(parts, ".")
			i := arrayCount[name]
			arrayCount[name] = i + 1
			prefix = append(append([]string{}, parts[:len(parts)-1]...), parts[len(parts)-1]+"["+strconv.Itoa(i)+"]")
			record(prefix, line)
		case unstable.KeyValue:
			keyval(prefix, n)
		}
	}
	return lines, p.Error()
}
