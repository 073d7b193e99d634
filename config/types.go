package config

// Config is the daemon's whole configuration, as decoded from TOML. Field
// names are the TOML keys; see config.toml (the sample) for every key with
// its default and meaning.
type Config struct {
	SchemaVersion string  `toml:"schema_version"`
	Service       Service `toml:"service"`
	Build         Build   `toml:"build"`
	Policy        Policy  `toml:"policy"`
	Logging       Logging `toml:"logging"`

	// Path is the file this config was loaded from ("" for defaults).
	Path string `toml:"-"`
}

type Service struct {
	SocketPath            string `toml:"socket_path"`
	SocketGroup           string `toml:"socket_group"` // "" = leave the daemon's group
	SocketMode            string `toml:"socket_mode"`  // octal string, e.g. "0660"
	RequestTimeoutSec     int    `toml:"request_timeout_sec"`
	MaxConnections        int    `toml:"max_connections"`
	MaxConnectionsPerUser int    `toml:"max_connections_per_user"`
	ShutdownGraceSec      int    `toml:"shutdown_grace_sec"`
}

type Build struct {
	WorkspaceRoot string            `toml:"workspace_root"`
	PathMapping   PathMapping       `toml:"path_mapping"`
	PathMappings  []PathMapping     `toml:"path_mappings"`
	Commands      map[string]string `toml:"commands"`
	Timeouts      Timeouts          `toml:"timeouts"`
	Environment   Environment       `toml:"environment"`
	Identity      Identity          `toml:"identity"`
	Limits        Limits            `toml:"limits"`
	Sandbox       Sandbox           `toml:"sandbox"`
}

// PathMapping maps a container path prefix to a host path prefix. Templates
// may use {user} and {workspace_root}; host_template must contain {user}.
type PathMapping struct {
	ContainerTemplate string `toml:"container_template"`
	HostTemplate      string `toml:"host_template"`
	Mode              string `toml:"mode"` // "rw" (default) or "ro"; only in [[build.path_mappings]]
}

type Timeouts struct {
	DefaultSec   int `toml:"default_sec"`
	MaxSec       int `toml:"max_sec"`
	KillGraceSec int `toml:"kill_grace_sec"`
}

type Environment struct {
	// Allow lists the variable names a request may pass to the build.
	Allow []string `toml:"allow"`
	// Path is the PATH the build gets (never the client's).
	Path string `toml:"path"`
}

type Identity struct {
	DenyGroups []string `toml:"deny_groups"`
}

type Limits struct {
	PidsMax          int64  `toml:"pids_max"`   // 0 = no limit
	MemoryMax        string `toml:"memory_max"` // bytes with K/M/G suffix, "" = no limit
	CPUMax           string `toml:"cpu_max"`    // cgroup v2 cpu.max syntax "quota period", "" = no limit
	NoNewPrivs       *bool  `toml:"no_new_privs"`
	MaxBuildsPerUser int    `toml:"max_builds_per_user"`
	MaxBuildsTotal   int    `toml:"max_builds_total"`
}

type Sandbox struct {
	Enabled  bool     `toml:"enabled"`
	Network  bool     `toml:"network"`
	Writable []string `toml:"writable"`
	Readable []string `toml:"readable"`
}

type Policy struct {
	// Directory of operator .rego files (and optional data.json) used
	// instead of the bundled policies; "" = bundled.
	Directory string `toml:"directory"`
}

type Logging struct {
	Level       string `toml:"level"`        // debug, info, warn, error
	Directory   string `toml:"directory"`    // "" = no log file
	MaxSizeMB   int    `toml:"max_size_mb"`  // rotate at this size
	MaxBackups  int    `toml:"max_backups"`  // rotated files kept
	Console     bool   `toml:"console"`      // also log to stderr (journald)
	DecisionLog string `toml:"decision_log"` // file name in Directory, "" = off
}
