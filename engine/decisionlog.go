package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/build-service/build-service/internal/strictdir"
)

// Mask replaces every environment value (and every value derived from one)
// in the decision log.
const Mask = "**masked**"

// DecisionLogPath is the path a decision log entry reports, as OPA does
// for the query data.build_service.decision.
const DecisionLogPath = "build_service/decision"

// LogEntry is one line of the decision log, in OPA's decision-log shape
// (decision_id, path, input, result, timestamp, revision, labels, metrics,
// masked, error), plus "custom" with what Go made of the result.
type LogEntry struct {
	Labels      map[string]string `json:"labels"`
	DecisionID  string            `json:"decision_id"`
	Revision    string            `json:"revision"`
	Path        string            `json:"path"`
	Input       any               `json:"input"`
	Result      any               `json:"result,omitempty"`
	Error       string            `json:"error,omitempty"`
	RequestedBy string            `json:"requested_by"`
	Timestamp   time.Time         `json:"timestamp"`
	Metrics     map[string]int64  `json:"metrics"`
	Masked      []string          `json:"masked,omitempty"`
	Custom      LogCustom         `json:"custom"`
}

// LogCustom is the final decision after strict decoding and invariants.
type LogCustom struct {
	RequestID string   `json:"request_id"`
	Allow     bool     `json:"allow"`
	Reasons   []string `json:"reasons"`
	Rules     []string `json:"rules"`
	Source    string   `json:"policy_source"`
}

// instanceID labels every entry of this process, like OPA's labels.id.
var instanceID = newDecisionID()

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// decisionLog is a rotating file shared by every engine that logs to the
// same path, so a reload (new engine, then close the old one) never has two
// rotators on one file.
type decisionLog struct {
	path string
	mu   sync.Mutex // serialises writes (one line per Write)
	out  *lumberjack.Logger
	refs int
	// closed is set (under mu) when the last engine closed the file, so a
	// late write cannot make lumberjack reopen it.
	closed bool
}

var (
	logsMu sync.Mutex
	logs   = map[string]*decisionLog{}
)

func openDecisionLog(path string, maxSizeMB, maxBackups int) (*decisionLog, error) {
	logsMu.Lock()
	defer logsMu.Unlock()
	if l, ok := logs[path]; ok {
		l.refs++
		return l, nil
	}
	// Root appends to this file by name: a directory another user could
	// write would let them plant a symlink to any file.
	if err := strictdir.Check(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("open decision log: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open decision log: %w", err)
	}
	if err := strictdir.Check(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("open decision log: %w", err)
	}
	// Open once now so a path that cannot be written fails at startup,
	// not at the first request. lumberjack creates files 0600.
	out := &lumberjack.Logger{Filename: path, MaxSize: maxSizeMB, MaxBackups: maxBackups}
	if _, err := out.Write(nil); err != nil {
		return nil, fmt.Errorf("open decision log %s: %w", path, err)
	}
	l := &decisionLog{path: path, out: out, refs: 1}
	logs[path] = l
	return l, nil
}

func (l *decisionLog) close() error {
	logsMu.Lock()
	defer logsMu.Unlock()
	l.refs--
	if l.refs > 0 {
		return nil
	}
	delete(logs, l.path)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if err := l.out.Close(); err != nil {
		return fmt.Errorf("close decision log %s: %w", l.path, err)
	}
	return nil
}

func (l *decisionLog) write(e *Engine, f Facts, ev evaluation) {
	line, err := json.Marshal(logEntry(e, f, ev))
	if err != nil {
		return // cannot happen: every field is plain JSON
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	_, _ = l.out.Write(append(line, '\n'))
}

// logEntry builds the (masked) entry for one evaluation.
func logEntry(e *Engine, f Facts, ev evaluation) LogEntry {
	d := ev.decision
	rules := make([]string, 0, len(d.Denials))
	for _, dn := range d.Denials {
		rules = append(rules, dn.Rule)
	}
	entry := LogEntry{
		Labels:      map[string]string{"id": instanceID, "version": version(), "app": "build-service"},
		DecisionID:  d.DecisionID,
		Revision:    d.Revision,
		Path:        DecisionLogPath,
		Error:       d.Failure,
		RequestedBy: fmt.Sprintf("uid:%d pid:%d", f.Peer.UID, f.Peer.PID),
		Timestamp:   ev.started.UTC(),
		Metrics:     map[string]int64{"timer_rego_query_eval_ns": ev.evalTime.Nanoseconds()},
		Custom: LogCustom{
			RequestID: f.Request.RequestID, Allow: d.Allow,
			Reasons: append([]string{}, d.Reasons...), Rules: rules, Source: e.source,
		},
	}
	var masked []string
	entry.Input, masked = maskInput(ev.input)
	var rmasked []string
	entry.Result, rmasked = maskResult(ev.result)
	entry.Masked = append(masked, rmasked...)
	return entry
}

// maskInput copies the input document with every env value masked: the
// values in input.env, and make assignments that came from MAKEFLAGS or
// GNUMAKEFLAGS (their values are parts of an env value).
func maskInput(in map[string]any) (any, []string) {
	if in == nil {
		return nil, nil
	}
	out := maps.Clone(in)
	var masked []string
	if env, ok := in["env"].(map[string]any); ok {
		m := make(map[string]any, len(env))
		for _, k := range slices.Sorted(maps.Keys(env)) {
			m[k] = Mask
			masked = append(masked, "/input/env/"+k)
		}
		out["env"] = m
	}
	if mk, ok := in["make"].(map[string]any); ok {
		if list, ok := mk["assignments"].([]any); ok {
			mk = maps.Clone(mk)
			cp := make([]any, len(list))
			for i, a := range list {
				cp[i] = a
				if o, ok := a.(map[string]any); ok && o["source"] != "argv" {
					o = maps.Clone(o)
					o["value"] = Mask
					cp[i] = o
					masked = append(masked, fmt.Sprintf("/input/make/assignments/%d/value", i))
				}
			}
			mk["assignments"] = cp
			out["make"] = mk
		}
	}
	return out, masked
}

// maskResult copies the policy's result with result.env values masked.
func maskResult(r any) (any, []string) {
	obj, ok := r.(map[string]any)
	if !ok {
		return r, nil
	}
	out := maps.Clone(obj)
	var masked []string
	if env, ok := obj["env"].(map[string]any); ok {
		m := make(map[string]any, len(env))
		for _, k := range slices.Sorted(maps.Keys(env)) {
			m[k] = Mask
			masked = append(masked, "/result/env/"+k)
		}
		out["env"] = m
	}
	return out, masked
}
