package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/build-service/build-service/account"
	"github.com/build-service/build-service/config"
	"github.com/build-service/build-service/engine"
	"github.com/build-service/build-service/executor"
	"github.com/build-service/build-service/internal/strictdir"
	"github.com/build-service/build-service/mapper"
	"github.com/build-service/build-service/protocol"
	"github.com/build-service/build-service/server"
)

// version is set with -ldflags "-X main.version=..."; otherwise it comes
// from the build info.
var version = ""

const usage = `usage:
  build-service [--config PATH] [--socket PATH]            serve (default)
  build-service check-config [--config PATH]               validate config and policies
  build-service explain [--config PATH] (--user NAME | --uid N) --cwd PATH
                        [--env K=V]... [--timeout S] -- COMMAND ARGS...
                                                           print the input document and the decision; runs nothing
  build-service policy export DIR                          write the bundled policies to DIR
  build-service policy test [DIR]                          run the Rego tests (bundled set when no DIR)
  build-service --version
The config file is --config, else $BUILD_SERVICE_CONFIG, else the default path.
`

// usageError is a bad command line (exit 2, usage printed).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitCode maps a failure to the daemon's exit status: 1 for everything
// but a bad command line (2, handled in main).
func exitCode(error) int { return 1 }

func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build-service", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "config file")
	socket := fs.String("socket", "", "socket path (overrides service.socket_path)")
	showVersion := fs.Bool("version", false, "print the version")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(usage)
			return nil
		}
		return usagef("%v", err)
	}
	if *showVersion {
		fmt.Println("build-service", buildVersion())
		return nil
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "serve" {
		if len(rest) > 1 {
			return usagef("serve takes no arguments")
		}
		return serve(ctx, *cfgPath, *socket)
	}
	switch rest[0] {
	case "check-config":
		return checkConfig(ctx, *cfgPath, rest[1:])
	case "explain":
		return explain(ctx, *cfgPath, rest[1:], os.Stdout)
	case "policy":
		return policy(ctx, rest[1:])
	default:
		return usagef("unknown subcommand %q", rest[0])
	}
}

// loadConfig loads the config like the daemon does and applies the
// --socket override.
func loadConfig(cfgPath, socket string) (*config.Config, error) {
	cfg, err := config.FromEnvAndFlag(cfgPath)
	if err != nil {
		return nil, err
	}
	// The config decides who gets which groups, where builds run and
	// which policy decides: a file another user could write (or swap,
	// through its directory) would be theirs to decide with, at the next
	// start or SIGHUP. Held to the policy directory's rule.
	if cfg.Path != "" {
		if err := strictdir.CheckFile(cfg.Path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if socket != "" {
		cfg.Service.SocketPath = socket
		// The override gets the same checks as the file's value.
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("--socket %q: %w", socket, err)
		}
	}
	return cfg, nil
}

// generation builds config, mapper and engine together, as startup and
// every reload do.
func generation(ctx context.Context, cfgPath, socket string) (*server.Generation, error) {
	cfg, err := loadConfig(cfgPath, socket)
	if err != nil {
		return nil, err
	}
	if err := cfg.Build.CheckCommandsSafe(); err != nil {
		return nil, err
	}
	m, err := mapper.New(cfg.Build)
	if err != nil {
		return nil, fmt.Errorf("mapper: %w", err)
	}
	e, err := engine.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &server.Generation{Config: cfg, Mapper: m, Engine: e, Close: e.Close}, nil
}

func serve(ctx context.Context, cfgPath, socket string) error {
	cfg, err := loadConfig(cfgPath, socket)
	if err != nil {
		return err
	}
	log, closer, err := server.NewLogger(cfg.Logging, os.Stderr)
	if err != nil {
		return err
	}
	defer closer.Close()
	gen, err := generation(ctx, cfgPath, socket)
	if err != nil {
		log.Error().Err(err).Msg("startup failed")
		return err
	}
	if err := cfg.Build.CheckCommands(); err != nil {
		// Not fatal: the binary may be installed later; every build of it
		// fails with 127 until then, and the operator should know why.
		log.Warn().Err(err).Msg("a build command cannot run on this host")
	}
	x, err := executor.New(executor.Options{Logger: log})
	if err != nil {
		gen.Close()
		log.Error().Err(err).Msg("startup failed")
		return fmt.Errorf("executor: %w", err)
	}
	srv, err := server.New(server.Options{
		Logger:    log,
		Gen:       gen,
		Reload:    func(ctx context.Context) (*server.Generation, error) { return generation(ctx, cfgPath, socket) },
		Executor:  x,
		Version:   buildVersion(),
		ConfigRef: cfg.Path,
	})
	if err != nil {
		gen.Close()
		log.Error().Err(err).Msg("startup failed")
		return err
	}
	return srv.Run(ctx)
}

func checkConfig(ctx context.Context, cfgPath string, args []string) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p := fs.String("config", cfgPath, "config file")
	if err := fs.Parse(args); err != nil {
		return usagef("check-config: %v", err)
	}
	if fs.NArg() != 0 {
		return usagef("check-config takes no arguments")
	}
	cfg, err := loadConfig(*p, "")
	if err != nil {
		return err
	}
	if _, err := mapper.New(cfg.Build); err != nil {
		return fmt.Errorf("mapper: %w", err)
	}
	if err := cfg.Build.CheckCommands(); err != nil {
		return err
	}
	if err := cfg.Build.CheckCommandsSafe(); err != nil {
		return err
	}
	if g := cfg.Service.SocketGroup; g != "" {
		// The daemon would refuse to start without it.
		if _, err := user.LookupGroup(g); err != nil {
			return fmt.Errorf("service.socket_group %q: %w", g, err)
		}
	}
	// Check opens no decision log: it must not touch the daemon's files.
	if err := engine.Check(ctx, cfg); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	src := cfg.Path
	if src == "" {
		src = "built-in defaults"
	}
	pol := cfg.Policy.Directory
	if pol == "" {
		pol = "bundled"
	}
	fmt.Printf("config %s: ok\npolicy %s: ok\n", src, pol)
	return nil
}

// multiFlag collects repeated --env K=V.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func explain(ctx context.Context, cfgPath string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p := fs.String("config", cfgPath, "config file")
	userName := fs.String("user", "", "caller's user name")
	uid := fs.Int("uid", -1, "caller's uid")
	cwd := fs.String("cwd", "", "caller's (container) working directory")
	timeout := fs.Int("timeout", 0, "requested timeout_sec (0 = none)")
	reqType := fs.String("type", "", "request type (build or doctor)")
	var envs multiFlag
	fs.Var(&envs, "env", "K=V sent by the client (repeatable)")
	if err := fs.Parse(args); err != nil {
		return usagef("explain: %v", err)
	}
	if (*userName == "") == (*uid < 0) {
		return usagef("explain: give exactly one of --user NAME or --uid N")
	}
	if *cwd == "" {
		return usagef("explain: --cwd PATH is required")
	}
	cmdline := fs.Args()
	if len(cmdline) == 0 {
		return usagef("explain: give the command after --, e.g. -- make all")
	}

	if *userName != "" {
		id, err := lookupUser(*userName)
		if err != nil {
			return err
		}
		*uid = id
	}
	acct, err := account.Lookup(*uid)
	if err != nil {
		return err
	}
	req := protocol.Request{
		SchemaVersion: protocol.SchemaVersion, Type: *reqType, RequestID: "explain",
		Command: cmdline[0], Args: cmdline[1:], Cwd: *cwd,
	}
	if req.Args == nil {
		req.Args = []string{}
	}
	if *timeout != 0 {
		req.TimeoutSec = timeout
	}
	for _, kv := range envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usagef("explain: --env %q: want NAME=value", kv)
		}
		if req.Env == nil {
			req.Env = map[string]string{}
		}
		req.Env[k] = v
	}
	// Refuse what the daemon would refuse before the policy sees it.
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := protocol.DecodeRequest(line); err != nil {
		return fmt.Errorf("the daemon would refuse this request: %w", err)
	}

	cfg, err := loadConfig(*p, "")
	if err != nil {
		return err
	}
	// A dry run writes no decision log entry (Explain), and opens none.
	cfg.Logging.DecisionLog = ""
	m, err := mapper.New(cfg.Build)
	if err != nil {
		return fmt.Errorf("mapper: %w", err)
	}
	e, err := engine.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	defer e.Close()

	// As if the caller connected straight from the host: peer = account.
	peer := engine.Peer{UID: *uid, GID: acct.GID, Groups: acct.Groups}
	gen := &server.Generation{Config: cfg, Mapper: m, Engine: e}
	f, err := server.Facts(ctx, gen, req, peer, acct, engine.Load{User: 1, Total: 1})
	if err != nil {
		return err
	}
	x := e.Explain(ctx, f)
	d := x.Decision

	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	fmt.Fprintln(out, "# input document (input.*)")
	if err := enc.Encode(x.Input); err != nil {
		return err
	}
	fmt.Fprintln(out, "# policy result (data.build_service.decision)")
	if err := enc.Encode(x.Result); err != nil {
		return err
	}
	fmt.Fprintln(out, "# decision (after strict decoding and the daemon's invariants)")
	if err := enc.Encode(explainedDecision(d)); err != nil {
		return err
	}
	if d.Allow {
		fmt.Fprintf(out, "# result: ALLOWED (policy %s); nothing was run\n", d.Revision)
	} else {
		fmt.Fprintf(out, "# result: DENIED (policy %s)\n", d.Revision)
		for i, r := range d.Reasons {
			rule := ""
			if i < len(d.Denials) && d.Denials[i].Reason == r {
				rule = " [" + d.Denials[i].Rule + "]"
			}
			fmt.Fprintf(out, "#   - %s%s\n", r, rule)
		}
		if d.Failure != "" {
			fmt.Fprintf(out, "#   (failure: %s)\n", d.Failure)
		}
	}
	return nil
}

// explainedDecision shows the decision with env names only: explain's
// output may be pasted into a ticket.
func explainedDecision(d engine.Decision) map[string]any {
	names := make([]string, 0, len(d.Env))
	for k := range d.Env {
		names = append(names, k)
	}
	return map[string]any{
		"allow":          d.Allow,
		"reasons":        d.Reasons,
		"timeout_sec":    d.TimeoutSec,
		"timeout_capped": d.TimeoutCapped,
		"env_names":      names,
		"limits":         d.Limits,
		"no_new_privs":   d.NoNewPrivs,
		"identity":       d.Identity,
		"denials":        d.Denials,
		"failure":        d.Failure,
		"revision":       d.Revision,
	}
}

func lookupUser(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	return account.UIDOf(name)
}

func policy(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("policy: want export DIR or test [DIR]")
	}
	switch args[0] {
	case "export":
		if len(args) != 2 {
			return usagef("policy export DIR")
		}
		return policyExport(args[1])
	case "test":
		if len(args) > 2 {
			return usagef("policy test [DIR]")
		}
		dir := ""
		if len(args) == 2 {
			dir = args[1]
		}
		return policyTest(ctx, dir)
	default:
		return usagef("policy: unknown subcommand %q", args[0])
	}
}

func policyExport(dir string) error {
	if err := engine.ExportBundled(dir); err != nil {
		return err
	}
	fmt.Printf("bundled policy written to %s; point policy.directory at it to use it\n", dir)
	return nil
}

func policyTest(ctx context.Context, dir string) error {
	return engine.RunPolicyTests(ctx, dir, os.Stdout)
}
