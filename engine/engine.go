// Package engine owns the policy decision: it turns the facts about one
// request (request, peer credentials, host account, mapper facts, load)
// into the input document, evaluates the bundled or operator Rego policy
// with OPA (compiled and prepared once), decodes the result strictly into
// a typed Decision, holds Go's invariants over it whatever the policy
// says, and writes the decision log. It also carries the policy tooling
// behind `build-service policy` and `explain`.
//
// engine is the only package that imports OPA. It must not run anything,
// open workspace files, or reach back into the server or executor: data
// flows request -> facts -> decision, never back.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/build-service/build-service/config"
)

// EvalTimeout bounds one evaluation; a policy that takes longer is a deny.
const EvalTimeout = 2 * time.Second

// Denial is one reason for a deny and the rule that gave it
// ("workspace.directory_outside", or "engine.<invariant>" for Go's own).
type Denial struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// Engine evaluates one compiled policy set against one config. It is
// immutable once built and safe for concurrent use; reloading means
// building a new Engine and closing the old one.
type Engine struct {
	cfg      *config.Config
	source   string
	revision string
	query    rego.PreparedEvalQuery
	log      *decisionLog // nil: no decision log
	closeLog sync.Once
}

// New loads the bundled policy, or cfg.Policy.Directory when set, compiles
// it with the shipped capabilities and the input schema, prepares the
// query once, and opens the decision log when cfg.Logging.DecisionLog is
// set. A policy that does not compile (OPA's error, with file:line), lacks
// the entry point, or claims data.config is refused.
func New(ctx context.Context, cfg *config.Config) (*Engine, error) {
	e, err := prepare(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if p := cfg.Logging.DecisionLogPath(); p != "" {
		if e.log, err = openDecisionLog(p, cfg.Logging.MaxSizeMB, cfg.Logging.MaxBackups); err != nil {
			return nil, err
		}
	} else if cfg.Logging.DecisionLog != "" {
		return nil, fmt.Errorf("open decision log: logging.decision_log %q is relative and logging.directory is empty", cfg.Logging.DecisionLog)
	}
	return e, nil
}

// Prepare is New without the decision log: for explain and other dry
// runs that must not write to the daemon's log.
func Prepare(ctx context.Context, cfg *config.Config) (*Engine, error) {
	return prepare(ctx, cfg)
}

// Check compiles the configured policy and checks the entry point, like
// New, without opening the decision log (for check-config).
func Check(ctx context.Context, cfg *config.Config) error {
	_, err := prepare(ctx, cfg)
	return err
}

func prepare(ctx context.Context, cfg *config.Config) (*Engine, error) {
	if cfg == nil {
		return nil, errors.New("engine: nil config")
	}
	caps, err := capabilities()
	if err != nil {
		return nil, err
	}
	ss, err := schemaSet()
	if err != nil {
		return nil, err
	}
	set, err := loadPolicySet(cfg.Policy.Directory, false, caps)
	if err != nil {
		return nil, err
	}
	data := maps.Clone(set.data)
	data["config"] = configDoc(cfg)
	generic, err := toJSONValue(data)
	if err != nil {
		return nil, err
	}
	store := inmem.NewFromObject(generic.(map[string]any))

	c := newCompiler(caps, ss)
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("open policy data: %w", err)
	}
	c = c.WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn))
	c.Compile(set.modules)
	store.Abort(ctx, txn)
	if c.Failed() {
		return nil, fmt.Errorf("%w: %s: %w", ErrCompile, set.source, regoErrors{c.Errors})
	}
	if len(c.GetRulesExact(entryRef)) == 0 {
		files := slices.Sorted(maps.Keys(set.modules))
		return nil, fmt.Errorf("policy %s (%s): %w", set.source, strings.Join(files, ", "), ErrNoEntryPoint)
	}
	pq, err := rego.New(
		rego.Query(EntryPoint),
		rego.Compiler(c),
		rego.Store(store),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare policy %s: %w", set.source, err)
	}
	return &Engine{cfg: cfg, source: set.source, revision: set.revision, query: pq}, nil
}

// Revision is a hash of the policy files in use (.rego without tests, and
// data.json): the same files give the same revision.
func (e *Engine) Revision() string { return e.revision }

// Source is "bundled" or the operator policy directory.
func (e *Engine) Source() string { return e.source }

// Close closes the decision log (shared with other engines on the same
// file until the last one closes).
// Closing twice is harmless; a Decide after Close still decides but logs
// only while another engine keeps the file open.
func (e *Engine) Close() error {
	var err error
	e.closeLog.Do(func() {
		if e.log != nil {
			err = e.log.close()
		}
	})
	return err
}

// Input returns the input document the policy would see for f, in its
// JSON form (as `explain` prints it).
func (e *Engine) Input(f Facts) map[string]any {
	doc := buildInput(f, ComputeIdentity(f.Peer, f.Account, e.cfg.Build.Identity.DenyGroups))
	v, err := toJSONValue(doc)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return v.(map[string]any)
}

// Explanation is a dry run: what the policy saw, what it returned, and
// the decision after strict decoding and Go's invariants.
type Explanation struct {
	Input    map[string]any `json:"input"`
	Result   any            `json:"result"` // the policy's raw value; nil when undefined or failed
	Decision Decision       `json:"decision"`
}

// Explain evaluates f like Decide but writes no decision log entry. The
// decision's Denials name the rule behind every reason.
func (e *Engine) Explain(ctx context.Context, f Facts) Explanation {
	ev := e.evaluate(ctx, f)
	return Explanation{Input: ev.input, Result: ev.result, Decision: ev.decision}
}

// Decide evaluates the policy for f. It never fails: an evaluation error,
// a timeout, an undefined or malformed decision, or a broken invariant is
// a deny whose reason says so (and whose Failure is set, for an error-level
// log line). Every decision is written to the decision log.
func (e *Engine) Decide(ctx context.Context, f Facts) Decision {
	ev := e.evaluate(ctx, f)
	if e.log != nil {
		e.log.write(e, f, ev)
	}
	return ev.decision
}

type evaluation struct {
	input    map[string]any
	result   any
	decision Decision
	started  time.Time
	evalTime time.Duration
}

func (e *Engine) evaluate(ctx context.Context, f Facts) evaluation {
	ev := evaluation{started: time.Now()}
	id := ComputeIdentity(f.Peer, f.Account, e.cfg.Build.Identity.DenyGroups)
	d := Decision{DecisionID: newDecisionID(), Revision: e.revision, Identity: id, Reasons: []string{}, Denials: []Denial{}}
	deny := func(failure bool, rule, format string, a ...any) {
		reason := fmt.Sprintf(format, a...)
		d.Allow = false
		d.Reasons = append(d.Reasons, reason)
		d.Denials = append(d.Denials, Denial{Rule: rule, Reason: reason})
		if failure && d.Failure == "" {
			d.Failure = reason
		}
	}

	generic, err := toJSONValue(buildInput(f, id))
	if err != nil {
		deny(true, "engine.input", "internal error building the policy input: %v", err)
		ev.decision = d
		return ev
	}
	ev.input = generic.(map[string]any)

	ectx, cancel := context.WithTimeout(ctx, EvalTimeout)
	rs, err := e.query.Eval(ectx, rego.EvalInput(generic))
	timedOut := ectx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	cancel()
	ev.evalTime = time.Since(ev.started)
	switch {
	case timedOut:
		deny(true, "engine.eval_timeout", "policy evaluation timed out after %s: denied", EvalTimeout)
	case err != nil:
		deny(true, "engine.eval_error", "policy evaluation failed: %v: denied", err)
	case ctx.Err() != nil:
		// OPA checks for cancellation only now and then; a request whose
		// context ended is never allowed.
		deny(true, "engine.cancelled", "request cancelled during the policy decision: %v", ctx.Err())
	default:
		ev.result = e.fromResults(&d, rs, f, deny)
	}
	ev.decision = d
	return ev
}

// fromResults takes the one result the query must have, decodes it into
// d and holds the invariants; it returns the raw value for the log.
func (e *Engine) fromResults(d *Decision, rs rego.ResultSet, f Facts, deny func(bool, string, string, ...any)) any {
	switch {
	case len(rs) == 0:
		deny(true, "engine.undefined", "policy decision %s is undefined: denied", EntryPoint)
		return nil
	case len(rs) > 1 || len(rs[0].Expressions) != 1:
		deny(true, "engine.ambiguous", "policy returned %d results for %s, want exactly one: denied", len(rs), EntryPoint)
		return nil
	}
	v := rs[0].Expressions[0].Value
	e.apply(d, v, f, deny)
	return v
}

// apply decodes the policy's value into d and holds the invariants.
func (e *Engine) apply(d *Decision, value any, f Facts, deny func(bool, string, string, ...any)) {
	pd, err := decodeDecision(value)
	if err != nil {
		deny(true, "engine.malformed", "%v: denied", err)
		return
	}
	d.Allow = pd.Allow
	d.Reasons = append(d.Reasons, pd.Reasons...)
	d.Denials = append(d.Denials, pd.Denials...)
	if len(pd.Denials) == 0 && !pd.Allow {
		for _, r := range pd.Reasons {
			d.Denials = append(d.Denials, Denial{Rule: "policy", Reason: r})
		}
	}
	d.TimeoutSec = pd.TimeoutSec
	d.Env = pd.Env
	d.Limits = pd.Limits
	d.NoNewPrivs = pd.NoNewPrivs
	if !d.Allow {
		if len(d.Reasons) == 0 {
			deny(false, "engine.no_reason", "denied by policy (the policy gave no reason)")
		}
		return
	}
	for _, v := range e.violations(*d, f) {
		deny(true, "engine."+v.rule, "%s", v.reason)
	}
	if d.Allow && f.Request.TimeoutSec != nil && *f.Request.TimeoutSec > d.TimeoutSec {
		d.TimeoutCapped = true
	}
}

type violation struct{ rule, reason string }

// serviceEnv are the variables the service supplies, never the request.
var serviceEnv = []string{"HOME", "USER", "LOGNAME", "PATH"}

// violations are Go's invariants over an allowing decision (DESIGN.md,
// "Invariants held in Go whatever a policy says"). Each one is a deny.
func (e *Engine) violations(d Decision, f Facts) []violation {
	var out []violation
	add := func(rule, format string, a ...any) {
		out = append(out, violation{rule, "policy allowed the request, but " + fmt.Sprintf(format, a...) + ": denied"})
	}
	if f.Mapping == nil {
		add("no_facts", "the daemon has no path facts for it")
	} else if mk := f.Mapping.Make; mk != nil && mk.ParseError != "" {
		add("unparsed_argv", "make's arguments could not be parsed (%s)", mk.ParseError)
	}
	if _, ok := e.cfg.Build.Command(f.Request.Command); !ok {
		add("command", "command %q is not in build.commands", f.Request.Command)
	}
	if f.Peer.UID == 0 || d.Identity.UID == 0 {
		add("root", "the build would run as uid 0")
	}
	if !f.Account.Known || f.Account.UID != f.Peer.UID {
		add("account", "uid %d has no matching account on this host", f.Peer.UID)
	}
	if !d.Identity.GIDAllowed {
		add("gid", "gid %d is not a group of the caller's account", f.Peer.GID)
	}
	max := e.cfg.Build.Timeouts.MaxSec
	if d.TimeoutSec < 1 || d.TimeoutSec > max {
		add("timeout", "its timeout_sec %d is outside 1..%d (build.timeouts.max_sec)", d.TimeoutSec, max)
	}
	allowed := map[string]bool{}
	for _, n := range serviceEnv {
		allowed[n] = true
	}
	for n := range f.Request.Env {
		if slices.Contains(e.cfg.Build.Environment.Allow, n) {
			allowed[n] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(d.Env)) {
		if !allowed[n] {
			add("env", "its env sets %s, which neither the request (allowlisted) nor the service supplied", n)
		}
	}
	want := map[string]string{"HOME": f.Account.Home, "USER": f.Account.Name, "LOGNAME": f.Account.Name}
	for _, n := range []string{"HOME", "USER", "LOGNAME"} {
		if v, ok := d.Env[n]; ok && v != want[n] {
			add("env_account", "its env sets %s to something other than the host account's value", n)
		}
	}
	return out
}

func newDecisionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux (getrandom); a clock-based
		// id keeps decisions traceable if it ever does.
		return fmt.Sprintf("t-%d", time.Now().UnixNano())
	}
	// UUID v4 layout, like OPA's decision ids.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
