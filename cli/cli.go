// Package cli is the client library behind build-cli: it parses build-cli's
// command line, builds one request (cwd, argv and only the environment
// variables the user names), sends it to build-service over the unix
// socket, relays the output events to stdout and stderr as they arrive,
// forwards INT/TERM/HUP/QUIT as control lines, and turns the exit event
// into build-cli's exit code (DESIGN.md's table).
//
// It ships into every container image inside build-cli, so it must not
// import OPA, zerolog or any package of the daemon side; protocol and the
// standard library are all it needs. It never decides anything a daemon
// must enforce: what it checks (valid UTF-8, sizes) only spares a round
// trip.
package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/build-service/build-service/protocol"
)

// DefaultSocket is where build-cli looks for the daemon when neither
// --socket nor BUILD_SERVICE_SOCKET says otherwise.
const DefaultSocket = "/run/build-service/build.sock"

// DefaultEnv is the list of variables sent when BUILD_SERVICE_ENV is unset.
// MAKEFLAGS, GNUMAKEFLAGS and MAKEFILES are left out on purpose: they change
// what make reads, so a user has to ask for them (and the policy to allow
// them) explicitly.
const DefaultEnv = "CC,CXX,CFLAGS,CXXFLAGS,CPPFLAGS,LDFLAGS,LDLIBS,TERM,LANG,LC_ALL"

// ForwardedSignals are the signals build-cli relays to the build; main
// passes them to signal.Notify.
var ForwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// IO is what build-cli takes from its process, so tests can drive Main
// without one.
type IO struct {
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)
	Getwd          func() (string, error)
	// Signals delivers the signals to forward while the build runs (nil:
	// none). The channel should be registered before Main starts, so a
	// Ctrl-C during connect is not lost.
	Signals <-chan os.Signal
}

// Options is build-cli's parsed command line.
type Options struct {
	Socket     string // "" = BUILD_SERVICE_SOCKET or DefaultSocket
	TimeoutSec *int
	RequestID  string // "" = random
	Version    bool
	Help       bool
	Command    string
	Args       []string
}

const usage = `usage: build-cli [--socket PATH] [--timeout SECONDS] [--request-id ID] [--] COMMAND [ARG...]
       build-cli --version
Runs COMMAND (such as make) through build-service on the host, in the current
directory, as the calling user, and relays its output and exit code. Options
go before COMMAND; everything from COMMAND on is passed as is.
  --socket PATH      daemon socket (default $BUILD_SERVICE_SOCKET, else ` + DefaultSocket + `)
  --timeout SECONDS  ask for this timeout (the service caps it)
  --request-id ID    correlation id for the service's logs (default: random)
Environment: BUILD_SERVICE_ENV lists the variables to send (comma-separated;
default ` + DefaultEnv + `); nothing else of the environment is sent.
Exit codes: the build's own; 124 timed out; 125 service unreachable, protocol
or usage error; 126 denied; 127 could not start; 128+N killed by signal N.
`

// ParseArgs parses build-cli's arguments (without argv[0]). Options are
// recognised only before COMMAND, so `build-cli make -C dir -j4` needs no
// `--`; an explicit `--` is accepted too.
func ParseArgs(args []string) (*Options, error) {
	o := &Options{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			if i < len(args) {
				o.Command, o.Args = args[i], args[i+1:]
			}
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.Command, o.Args = a, args[i+1:]
			break
		}
		name, value, hasValue := strings.Cut(a, "=")
		switch name {
		case "-h", "--help":
			o.Help = true
			return o, nil
		case "--version":
			if hasValue {
				return nil, fmt.Errorf("option --version takes no value")
			}
			o.Version = true
			continue
		case "--socket", "--timeout", "--request-id":
		default:
			return nil, fmt.Errorf("unknown option %q: options go before the command", a)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("option %s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "--socket":
			if value == "" {
				return nil, errors.New("option --socket needs a non-empty path")
			}
			o.Socket = value
		case "--timeout":
			n, err := strconv.Atoi(value)
			if err != nil {
				return nil, fmt.Errorf("option --timeout wants whole seconds, not %q", value)
			}
			o.TimeoutSec = &n
		case "--request-id":
			if err := protocol.ValidRequestID(value); err != nil || value == "" {
				return nil, fmt.Errorf("option --request-id wants 1-%d printable ASCII characters without spaces", protocol.MaxRequestIDBytes)
			}
			o.RequestID = value
		}
	}
	if o.Command == "" && !o.Version {
		return nil, errors.New("no command given")
	}
	return o, nil
}

// SocketPath is where to connect: --socket, else BUILD_SERVICE_SOCKET, else
// DefaultSocket.
func SocketPath(o *Options, lookupEnv func(string) (string, bool)) string {
	if o.Socket != "" {
		return o.Socket
	}
	if s, ok := lookupEnv("BUILD_SERVICE_SOCKET"); ok && s != "" {
		return s
	}
	return DefaultSocket
}

// EnvNames is the list of variable names to send: BUILD_SERVICE_ENV when it
// is set (an empty value sends none), else DefaultEnv. A name that is not a
// valid variable name is an error, so a typo does not silently drop CFLAGS.
func EnvNames(lookupEnv func(string) (string, bool)) ([]string, error) {
	list, ok := lookupEnv("BUILD_SERVICE_ENV")
	if !ok {
		list = DefaultEnv
	}
	var names []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if err := protocol.ValidEnvName(n); err != nil {
			return nil, fmt.Errorf("BUILD_SERVICE_ENV: %w", err)
		}
		names = append(names, n)
	}
	return names, nil
}

// NewRequest builds the request for o: the caller's cwd, the variables
// named by EnvNames that are set, and a random request id unless o has one.
func NewRequest(o *Options, cwd string, lookupEnv func(string) (string, bool)) (*protocol.Request, error) {
	names, err := EnvNames(lookupEnv)
	if err != nil {
		return nil, err
	}
	var env map[string]string
	for _, n := range names {
		if v, ok := lookupEnv(n); ok {
			if env == nil {
				env = map[string]string{}
			}
			env[n] = v
		}
	}
	id := o.RequestID
	if id == "" {
		id = randomID()
	}
	req := &protocol.Request{
		SchemaVersion: protocol.SchemaVersion,
		Type:          protocol.TypeBuild,
		RequestID:     id,
		Command:       o.Command,
		Args:          append([]string{}, o.Args...),
		Cwd:           cwd,
		TimeoutSec:    o.TimeoutSec,
		Env:           env,
	}
	return req, nil
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (getrandom)
	return "cli-" + hex.EncodeToString(b[:])
}

// Main is build-cli: it parses args (without argv[0]), runs the command
// through build-service and returns the exit code.
func Main(ctx context.Context, args []string, sys IO) int {
	o, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintf(sys.Stderr, "build-cli: %v (see build-cli --help)\n", err)
		return protocol.ExitUnavailable
	}
	switch {
	case o.Help:
		fmt.Fprint(sys.Stdout, usage)
		return 0
	case o.Version:
		fmt.Fprintln(sys.Stdout, VersionString("build-cli"))
		return 0
	}
	cwd, err := sys.Getwd()
	if err != nil {
		fmt.Fprintf(sys.Stderr, "build-cli: cannot tell the current directory: %v\n", err)
		return protocol.ExitUnavailable
	}
	req, err := NewRequest(o, cwd, sys.LookupEnv)
	if err != nil {
		fmt.Fprintf(sys.Stderr, "build-cli: %v\n", err)
		return protocol.ExitUnavailable
	}
	return Run(ctx, SocketPath(o, sys.LookupEnv), req, sys)
}

// VersionString is "NAME VERSION" from the binary's build info: the module
// version, or the VCS revision for a build from a checkout.
func VersionString(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name + " (unknown version)"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" && (v == "" || v == "(devel)") {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v = rev + modified
	}
	if v == "" {
		v = "(devel)"
	}
	return fmt.Sprintf("%s %s %s", name, v, bi.GoVersion)
}
