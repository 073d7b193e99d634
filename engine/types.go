package engine

import (
	"github.com/build-service/build-service/mapper"
	"github.com/build-service/build-service/protocol"
)

// Peer is who is calling, as the kernel says (SO_PEERCRED, SO_PEERGROUPS).
// It is bound at accept and never taken from the request body.
type Peer struct {
	UID    int   `json:"uid"`
	GID    int   `json:"gid"`
	PID    int   `json:"pid"`
	Groups []int `json:"groups"`
}

// Account is the caller's entry in the host account database.
type Account struct {
	Known  bool   `json:"known"`
	Name   string `json:"name,omitempty"`
	Home   string `json:"home,omitempty"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`    // primary gid
	Groups []int  `json:"groups"` // every group the account is in, primary included
	// GroupNames maps the gids in Groups to names (for deny_groups).
	GroupNames map[int]string `json:"group_names,omitempty"`
}

// Load is how many builds are running (slot for this request included).
type Load struct {
	User  int `json:"user"`
	Total int `json:"total"`
}

// Facts is everything Go knows about one request; the engine turns it into
// the input document.
type Facts struct {
	Request protocol.Request
	Peer    Peer
	Account Account
	Mapping *mapper.Facts
	Load    Load
}

// Identity is the exact credential a build would run with, computed in Go
// from the peer and the account (never from the policy): uid from the
// socket; gid the peer's gid when it is the account's primary gid or one of
// its groups; groups = peer groups ∩ account groups − deny_groups.
type Identity struct {
	UID    int   `json:"uid"`
	GID    int   `json:"gid"`
	Groups []int `json:"groups"`
	// GIDAllowed is false when the peer's gid is not one of the account's,
	// or is in build.identity.deny_groups (then GIDDenied is true).
	GIDAllowed bool `json:"gid_allowed"`
	GIDDenied  bool `json:"gid_denied"`
	// Dropped lists peer groups removed (not the account's, or denied).
	Dropped []int `json:"dropped_groups"`
}

// Limits are per-build resource limits from the decision (0/"" = none).
type Limits struct {
	PidsMax   int64  `json:"pids_max"`
	MemoryMax int64  `json:"memory_max"` // bytes
	CPUMax    string `json:"cpu_max"`
}

// Decision is the typed result of data.build_service.decision after strict
// decoding and Go's invariants.
type Decision struct {
	Allow      bool     `json:"allow"`
	Reasons    []string `json:"reasons"`
	TimeoutSec int      `json:"timeout_sec"`
	// TimeoutCapped is true when the request asked for more than max_sec.
	TimeoutCapped bool `json:"timeout_capped"`
	// Env is the complete environment of the build (names the request or
	// the service supplied only).
	Env        map[string]string `json:"env"`
	Limits     Limits            `json:"limits"`
	NoNewPrivs bool              `json:"no_new_privs"`
	Identity   Identity          `json:"identity"`
	DecisionID string            `json:"decision_id"`
	Revision   string            `json:"revision"`

	// Denials pairs each reason of a deny with the rule that gave it
	// (the policy's "denials", or "engine.<invariant>" for Go's own;
	// "policy" when an operator policy names no rules).
	Denials []Denial `json:"denials"`
	// Failure is set when the deny is a failure rather than a verdict:
	// evaluation error or timeout, undefined or malformed decision, a
	// broken invariant. Log it at error level.
	Failure string `json:"failure,omitempty"`
}
