package protocol

import "syscall"

// forwardable are the signals build-cli forwards and the daemon passes on to
// the build's process group; anything else stays local to one side.
var forwardable = map[string]syscall.Signal{
	"INT":  syscall.SIGINT,
	"TERM": syscall.SIGTERM,
	"HUP":  syscall.SIGHUP,
	"QUIT": syscall.SIGQUIT,
}

// SignalNumber maps a control line's signal name (INT, TERM, HUP, QUIT) to
// the signal; ok is false for any other name.
func SignalNumber(name string) (sig syscall.Signal, ok bool) {
	sig, ok = forwardable[name]
	return sig, ok
}

// SignalName is the control-line name of a forwardable signal ("" for any
// other).
func SignalName(sig syscall.Signal) string {
	for name, s := range forwardable {
		if s == sig {
			return name
		}
	}
	return ""
}

// ExitCodeForSignal is the exit code that reports death by signal n: 128+n,
// as a shell reports it (130 for SIGINT).
func ExitCodeForSignal(n int) int { return ExitSignalBase + n }
