// Package protocol owns the wire format between build-cli and build-service:
// the request and control lines the client sends, the NDJSON events the
// daemon sends back, the framing limits, and the exit-code table.
//
// It must not import anything beyond the standard library: build-cli links
// it into every container image.
package protocol

// SchemaVersion is the only request schema_version this package accepts.
const SchemaVersion = "1"

// Framing limits. A request line (including its '\n') is at most
// MaxRequestBytes; a control line at most MaxControlBytes.
const (
	MaxRequestBytes = 64 << 10
	MaxControlBytes = 1 << 10
)

// Exit codes of build-cli (see the README's table). 0-123 are the build's own.
const (
	ExitTimeout     = 124 // the build timed out
	ExitUnavailable = 125 // build-service unreachable or protocol error
	ExitDenied      = 126 // request denied by policy
	ExitCannotStart = 127 // allowed, but the command could not be started
	ExitSignalBase  = 128 // 128+N: the build was killed by signal N
)

// Request types.
const (
	TypeBuild  = "build"
	TypeDoctor = "doctor"
)

// Event types.
const (
	EventStdout = "stdout"
	EventStderr = "stderr"
	EventExit   = "exit"
)

// Request is the first line a client sends. Decode it with DecodeRequest,
// never with a bare json.Unmarshal (duplicate and case-folded keys).
type Request struct {
	SchemaVersion string            `json:"schema_version"`
	Type          string            `json:"type,omitempty"`
	RequestID     string            `json:"request_id"`
	Command       string            `json:"command"`
	Args          []string          `json:"args"`
	Cwd           string            `json:"cwd"`
	TimeoutSec    *int              `json:"timeout_sec,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
}

// Control is a line a client may send after the request.
type Control struct {
	Type   string `json:"type"`   // "signal"
	Signal string `json:"signal"` // INT, TERM, HUP or QUIT
}

// Event is one NDJSON line from the daemon. Output events carry Data; the
// exit event carries Code and TimedOut and, optionally, the extra fields.
// Use the constructors so the exit event always carries code and timed_out.
type Event struct {
	Type string `json:"type"`
	Data string `json:"data,omitempty"`

	Code     *int  `json:"code,omitempty"`
	TimedOut *bool `json:"timed_out,omitempty"`

	// Optional extras on the exit event; older clients ignore them.
	Signal     string   `json:"signal,omitempty"`
	DurationMS int64    `json:"duration_ms,omitempty"`
	Denied     bool     `json:"denied,omitempty"`
	Reasons    []string `json:"reasons,omitempty"`
	Cancelled  bool     `json:"cancelled,omitempty"`
	StartError bool     `json:"start_error,omitempty"`
	DecisionID string   `json:"decision_id,omitempty"`
}
