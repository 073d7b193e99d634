package config

// Config is the daemon's whole configuration, as decoded from TOML. Field
// names are the TOML keys; see config.toml (the sample) for every key with
// its default and meaning.
type Config struct {
	SchemaVersion string  `toml:"schema_version" json:"schema_version"`
	Service       Service `toml:"service" json:"service"`
	Build         Build   `toml:"build" json:"build"`
	Policy        Policy  `toml:"policy" json:"policy"`
	Logging       Logging `toml:"logging" json:"logging"`

	// Path is the file this config was loaded from ("" for defaults).
	Path string `toml:"-" json:"-"`

	// src is where the config was decoded from, for line numbers in
	// Validate's messages; nil for a Config built in Go.
	src *source
}

type Service struct {
	SocketPath            string `toml:"socket_path" json:"socket_path"`
	SocketGroup           string `toml:"socket_group" json:"socket_group"` // "" = leave the daemon's group
	SocketMode            string `toml:"socket_mode" json:"socket_mode"`   // octal string, e.g. "0660"
	RequestTimeoutSec     int    `toml:"request_timeout_sec" json:"request_timeout_sec"`
	MaxConnections        int    `toml:"max_connections" json:"max_connections"`
	MaxConnectionsPerUser int    `toml:"max_connections_per_user" json:"max_connections_per_user"`
	ShutdownGraceSec      int    `toml:"shutdown_grace_sec" json:"shutdown_grace_sec"`
}

type Build struct {
	WorkspaceRoot string            `toml:"workspace_root" json:"workspace_root"`
	PathMapping   PathMapping       `toml:"path_mapping" json:"path_mapping"`
	PathMappings  []PathMapping     `toml:"path_mappings" json:"path_mappings"`
	Commands      map[string]string `toml:"commands" json:"commands"`
	Timeouts      Timeouts          `toml:"timeouts" json:"timeouts"`
	Environment   Environment       `toml:"environment" json:"environment"`
	Identity      Identity          `toml:"identity" json:"identity"`
	Limits        Limits            `toml:"limits" json:"limits"`
	Sandbox       Sandbox           `toml:"sandbox" json:"sandbox"`
}

// PathMapping maps a container path prefix to a host path prefix. Templates
// may use {user} and {workspace_root}; host_template must contain {user}.
type PathMapping struct {
	ContainerTemplate string `toml:"container_template" json:"container_template"`
	HostTemplate      string `toml:"host_template" json:"host_template"`
	Mode              string `toml:"mode" json:"mode"` // "rw" (default) or "ro"; only in [[build.path_mappings]]
}

type Timeouts struct {
	DefaultSec   int `toml:"default_sec" json:"default_sec"`
	MaxSec       int `toml:"max_sec" json:"max_sec"`
	KillGraceSec int `toml:"kill_grace_sec" json:"kill_grace_sec"`
}

type Environment struct {
	// Allow lists the variable names a request may pass to the build.
	Allow []string `toml:"allow" json:"allow"`
	// Path is the PATH the build gets (never the client's).
	Path string `toml:"path" json:"path"`
}

type Identity struct {
	DenyGroups []string `toml:"deny_groups" json:"deny_groups"`
}

type Limits struct {
	PidsMax          int64  `toml:"pids_max" json:"pids_max"`     // 0 = no limit
	MemoryMax        string `toml:"memory_max" json:"memory_max"` // bytes with K/M/G suffix, "" = no limit
	CPUMax           string `toml:"cpu_max" json:"cpu_max"`       // cgroup v2 cpu.max syntax "quota period", "" = no limit
	NoNewPrivs       *bool  `toml:"no_new_privs" json:"no_new_privs"`
	MaxBuildsPerUser int    `toml:"max_builds_per_user" json:"max_builds_per_user"`
	MaxBuildsTotal   int    `toml:"max_builds_total" json:"max_builds_total"`
}

type Sandbox struct {
	Enabled  bool     `toml:"enabled" json:"enabled"`
	Network  bool     `toml:"network" json:"network"`
	Writable []string `toml:"writable" json:"writable"`
	Readable []string `toml:"readable" json:"readable"`
}

type Policy struct {
	// Directory of operator .rego files (and optional data.json) used
	// instead of the bundled policies; "" = bundled.
	Directory string `toml:"directory" json:"directory"`
}

type Logging struct {
	Level       string `toml:"level" json:"level"`               // debug, info, warn, error
	Directory   string `toml:"directory" json:"directory"`       // "" = no log file
	MaxSizeMB   int    `toml:"max_size_mb" json:"max_size_mb"`   // rotate at this size
	MaxBackups  int    `toml:"max_backups" json:"max_backups"`   // rotated files kept
	Console     bool   `toml:"console" json:"console"`           // also log to stderr (journald)
	DecisionLog string `toml:"decision_log" json:"decision_log"` // file name in Directory, "" = off
}
