// Package config owns build-service's configuration: the TOML schema
// (types.go), the defaults, strict decoding (an unknown or misspelt key is an
// error naming the key and its line), validation with one message per
// problem, and the environment overrides (BUILD_SERVICE_CONFIG,
// BUILD_SERVICE_LOG_LEVEL). config.toml beside this file is the sample; a
// test keeps it and Default() from drifting apart.
//
// It must not open sockets, look up users or groups, touch the file system
// beyond reading the one config file, or import OPA or zerolog: it is a pure
// description of what the operator asked for, checked statically. Whether a
// group exists or a command is installed is for the daemon to check at
// startup, where the error can say what the host is missing.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// File and environment names the daemon reads its configuration from.
const (
	// DefaultPath is used when neither --config nor BUILD_SERVICE_CONFIG
	// names a file; when it does not exist the built-in defaults apply.
	DefaultPath = "/etc/build-service/config.toml"
	// EnvConfig names the config file when --config is not given.
	EnvConfig = "BUILD_SERVICE_CONFIG"
	// EnvLogLevel overrides logging.level (validated like it).
	EnvLogLevel = "BUILD_SERVICE_LOG_LEVEL"
)

// SchemaVersion is the only config schema_version this package accepts.
const SchemaVersion = "1"

// Placeholders usable in path templates.
const (
	PlaceholderUser          = "{user}"
	PlaceholderWorkspaceRoot = "{workspace_root}"
)

// DefaultEnvAllow is the environment allowlist of Default() and of the
// sample config. build-cli sends these names when BUILD_SERVICE_ENV is not
// set. MAKEFLAGS and friends may be listed by an operator (the mapper parses
// and the policy confines them), but are deliberately not here.
func DefaultEnvAllow() []string {
	return []string{"CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LDLIBS", "TERM", "LANG", "LC_ALL"}
}

// DefaultDenyGroups are supplementary groups a build never keeps: each of
// them is root-equivalent or close to it on a typical host.
func DefaultDenyGroups() []string {
	return []string{"root", "sudo", "wheel", "adm", "docker", "lxd", "libvirt", "disk"}
}

// Default returns the built-in configuration: what the daemon runs with when
// there is no config file, and what every key absent from a file keeps. It
// equals the sample config.toml except service.socket_group, which is ""
// here (leave the socket in the daemon's group, so a developer's machine
// needs no extra group) and "build-users" in the sample.
func Default() *Config {
	nnp := true
	return &Config{
		SchemaVersion: SchemaVersion,
		Service: Service{
			SocketPath:            "/run/build-service/build.sock",
			SocketGroup:           "",
			SocketMode:            "0660",
			RequestTimeoutSec:     5,
			MaxConnections:        64,
			MaxConnectionsPerUser: 8,
			ShutdownGraceSec:      30,
		},
		Build: Build{
			WorkspaceRoot: "/srv/build-service/workspaces",
			PathMapping: PathMapping{
				ContainerTemplate: "{workspace_root}/{user}",
				HostTemplate:      "{workspace_root}/{user}",
			},
			PathMappings: []PathMapping{},
			Commands:     map[string]string{"make": "/usr/bin/make"},
			Timeouts: Timeouts{
				DefaultSec:   600,
				MaxSec:       3600,
				KillGraceSec: 5,
			},
			Environment: Environment{
				Allow: DefaultEnvAllow(),
				Path:  "/usr/local/bin:/usr/bin:/bin",
			},
			Identity: Identity{DenyGroups: DefaultDenyGroups()},
			Limits: Limits{
				PidsMax:          4096,
				MemoryMax:        "8G",
				CPUMax:           "",
				NoNewPrivs:       &nnp,
				MaxBuildsPerUser: 4,
				MaxBuildsTotal:   16,
			},
			Sandbox: Sandbox{
				Enabled:  false,
				Network:  true,
				Writable: []string{},
				Readable: []string{},
			},
		},
		Policy: Policy{Directory: ""},
		Logging: Logging{
			Level:       "info",
			Directory:   "/var/log/build-service",
			MaxSizeMB:   50,
			MaxBackups:  5,
			Console:     true,
			DecisionLog: "decisions.log",
		},
	}
}

// Load reads the file at path, decodes it strictly onto Default() and
// validates it. Every error names the path; decoding and validation errors
// also name the key and line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	c.Path = path
	return c, nil
}

// Parse decodes data (named name in messages, e.g. "config.toml") strictly
// onto Default() and validates the result. Lists and tables in the file
// replace the default ones wholesale: a [build.commands] table that names
// only cmake allows only cmake, never cmake plus the default make.
func Parse(data []byte, name string) (*Config, error) {
	c, err := decode(data, name)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// FromEnvAndFlag finds, loads and validates the daemon's config:
//
//   - flagPath (--config) when not "";
//   - else the file named by BUILD_SERVICE_CONFIG when set and not "";
//   - else DefaultPath when it exists, else the built-in defaults.
//
// A file named by the flag or the variable must exist: a typo there is an
// error, never a silent fall back to defaults. Then BUILD_SERVICE_LOG_LEVEL,
// when set and not "", replaces logging.level.
func FromEnvAndFlag(flagPath string) (*Config, error) {
	return fromEnvAndFlag(flagPath, os.Getenv, DefaultPath)
}

func fromEnvAndFlag(flagPath string, getenv func(string) string, defaultPath string) (*Config, error) {
	path := flagPath
	if path == "" {
		path = getenv(EnvConfig)
	}
	var c *Config
	switch {
	case path != "":
		var err error
		if c, err = Load(path); err != nil {
			return nil, err
		}
	default:
		_, err := os.Stat(defaultPath)
		switch {
		case err == nil:
			if c, err = Load(defaultPath); err != nil {
				return nil, err
			}
		case errors.Is(err, fs.ErrNotExist):
			c = Default()
		default:
			return nil, fmt.Errorf("stat default config: %w", err)
		}
	}
	if lvl := getenv(EnvLogLevel); lvl != "" {
		if !validLevel(lvl) {
			return nil, &Problem{Key: EnvLogLevel, Msg: fmt.Sprintf("%s=%q: must be one of %s", EnvLogLevel, lvl, levelList)}
		}
		c.Logging.Level = lvl
	}
	return c, nil
}

// Mode is the socket's permission bits from socket_mode. An unparsable mode
// (which Validate rejects) gives 0600, the safest mode that still lets the
// daemon's owner connect.
func (s Service) Mode() os.FileMode {
	m, err := parseMode(s.SocketMode)
	if err != nil {
		return 0o600
	}
	return m
}

// RequestTimeout is how long a client has to send its request line.
func (s Service) RequestTimeout() time.Duration {
	return time.Duration(s.RequestTimeoutSec) * time.Second
}

// ShutdownGrace is how long builds in flight may run on after SIGTERM.
func (s Service) ShutdownGrace() time.Duration {
	return time.Duration(s.ShutdownGraceSec) * time.Second
}

// Default is the timeout of a request that does not ask for one.
func (t Timeouts) Default() time.Duration { return time.Duration(t.DefaultSec) * time.Second }

// Max is the cap on any build's timeout.
func (t Timeouts) Max() time.Duration { return time.Duration(t.MaxSec) * time.Second }

// KillGrace is the wait between SIGTERM and SIGKILL.
func (t Timeouts) KillGrace() time.Duration { return time.Duration(t.KillGraceSec) * time.Second }

// TimeoutCaps returns the default and the maximum build timeout in seconds,
// as the policy and the executor's invariant use them.
func (c *Config) TimeoutCaps() (defaultSec, maxSec int) {
	return c.Build.Timeouts.DefaultSec, c.Build.Timeouts.MaxSec
}

// Command returns the absolute path allowlisted for name.
func (b Build) Command(name string) (path string, ok bool) {
	path, ok = b.Commands[name]
	return path, ok
}

// NoNewPrivsEnabled reports whether builds get no_new_privs by default
// (true unless the config says no_new_privs = false).
func (l Limits) NoNewPrivsEnabled() bool { return l.NoNewPrivs == nil || *l.NoNewPrivs }

// MemoryMaxBytes is memory_max in bytes, 0 for no limit. Validate rejects
// an unparsable value; here it reads as 0.
func (l Limits) MemoryMaxBytes() int64 {
	n, err := ParseSize(l.MemoryMax)
	if err != nil {
		return 0
	}
	return n
}

// DecisionLogPath is the decision log's file: decision_log itself when
// absolute, else joined to the log directory; "" when it is off.
func (l Logging) DecisionLogPath() string {
	switch {
	case l.DecisionLog == "":
		return ""
	case strings.HasPrefix(l.DecisionLog, "/"):
		return l.DecisionLog
	case l.Directory == "":
		return ""
	default:
		return strings.TrimSuffix(l.Directory, "/") + "/" + l.DecisionLog
	}
}

// ParseSize parses a byte count with an optional K, M, G or T suffix
// (powers of 1024, case-insensitive): "8G", "512M", "1048576". "" and "0"
// mean no limit and give 0.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	digits, mult := s, int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	}
	if mult != 1 {
		digits = s[:len(s)-1]
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional K, M, G or T suffix, e.g. \"512M\"", s)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > (1<<63-1)/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}

// parseMode reads an octal permission string such as "0660" or "660".
func parseMode(s string) (os.FileMode, error) {
	t := strings.TrimPrefix(s, "0o")
	if t == "" || len(t) > 4 || strings.TrimLeft(t, "01234567") != "" {
		return 0, fmt.Errorf("%q is not an octal mode such as \"0660\"", s)
	}
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an octal mode such as \"0660\"", s)
	}
	if n > 0o777 {
		return 0, fmt.Errorf("%q has bits beyond 0777 (setuid, setgid or sticky)", s)
	}
	return os.FileMode(n), nil
}
