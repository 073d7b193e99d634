package server

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// One uid's "connection refused" and "request refused" lines are bounded:
// a client connecting in a loop (thousands a second) would otherwise
// rotate the log, and the audit trail with it, away within minutes. Past
// refusalLogBurst lines in refusalLogWindow, refusals are counted, and the
// next line logged for that uid says how many were left out
// (refusals_not_logged). Builds, denials and the decision log are not
// limited.
const (
	refusalLogWindow = 10 * time.Second
	// refusalLogBurst leaves every refusal of an ordinary burst in the log
	// (issue 6's load test refuses 70 connections of one uid at once, and an
	// operator wants each), while a flood is cut to 20 lines a second per
	// uid: about 200 MB a day of log at worst, not gigabytes.
	refusalLogBurst = 200
	// refusalLogPrune: past this many uids, expired windows are dropped.
	refusalLogPrune = 1024
)

type refusalLimiter struct {
	mu sync.Mutex
	by map[int]*refusalWindow
}

type refusalWindow struct {
	start      time.Time
	logged     int
	suppressed int
}

// allow reports whether a refusal of uid may be logged at now, and how
// many refusals of uid were left out since the last logged one.
func (l *refusalLimiter) allow(uid int, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[int]*refusalWindow{}
	}
	w := l.by[uid]
	if w == nil {
		if len(l.by) >= refusalLogPrune {
			for u, o := range l.by {
				if now.Sub(o.start) >= refusalLogWindow && o.suppressed == 0 {
					delete(l.by, u)
				}
			}
		}
		w = &refusalWindow{start: now}
		l.by[uid] = w
	}
	if now.Sub(w.start) >= refusalLogWindow {
		w.start, w.logged = now, 0
	}
	if w.logged >= refusalLogBurst {
		w.suppressed++
		return false, 0
	}
	w.logged++
	left := w.suppressed
	w.suppressed = 0
	return true, left
}

// logRefusal writes one refusal line (msg, with the reason) for uid, unless
// that uid is over its budget.
func (s *Server) logRefusal(log zerolog.Logger, uid int, msg, reason string) {
	ok, left := s.refusals.allow(uid, time.Now())
	if !ok {
		return
	}
	ev := log.Warn().Str("reason", reason)
	if left > 0 {
		ev = ev.Int("refusals_not_logged", left)
	}
	ev.Msg(msg)
}
