package config

import (
	"errors"
	"strings"
	"testing"
)

// Each case is a config file with exactly one thing wrong and the exact
// message an operator gets for it (file:line: key: what and why).
func TestValidateRefuses(t *testing.T) {
	cases := []struct {
		name string
		toml string
		want string
	}{
		{"a schema_version other than 1 is refused",
			`schema_version = "2"`,
			`config.toml:1: schema_version: "2" is not supported; this build-service reads schema_version "1"`},

		{"an empty socket path is refused",
			"[service]\nsocket_path = \"\"",
			`config.toml:2: service.socket_path: must not be empty`},
		{"a relative socket path is refused",
			"[service]\nsocket_path = \"run/build.sock\"",
			`config.toml:2: service.socket_path: "run/build.sock" must be an absolute path`},
		{"a socket path longer than sun_path is refused",
			"[service]\nsocket_path = \"/" + strings.Repeat("s", 110) + "\"",
			`config.toml:2: service.socket_path: 111 bytes is longer than a unix socket path can be (107)`},
		{"a socket path with a trailing slash is refused",
			"[service]\nsocket_path = \"/run/bs/\"",
			`config.toml:2: service.socket_path: "/run/bs/" must be a clean path (no trailing "/", "..", "." or "//")`},
		{"a socket group with a space is refused",
			"[service]\nsocket_group = \"build users\"",
			`config.toml:2: service.socket_group: "build users" is not a valid group name`},
		{"a socket mode that is not octal is refused",
			"[service]\nsocket_mode = \"rw-rw----\"",
			`config.toml:2: service.socket_mode: "rw-rw----" is not an octal mode such as "0660"`},
		{"a decimal-looking socket mode with 8 or 9 is refused",
			"[service]\nsocket_mode = \"0680\"",
			`config.toml:2: service.socket_mode: "0680" is not an octal mode such as "0660"`},
		{"a setgid socket mode is refused",
			"[service]\nsocket_mode = \"2660\"",
			`config.toml:2: service.socket_mode: "2660" has bits beyond 0777 (setuid, setgid or sticky)`},
		{"a world-writable socket mode is refused",
			"[service]\nsocket_mode = \"0666\"",
			`config.toml:2: service.socket_mode: "0666" lets every local user connect (world-writable); use "0660" and service.socket_group`},
		{"a world-writable socket mode without the leading zero is refused",
			"[service]\nsocket_mode = \"662\"",
			`config.toml:2: service.socket_mode: "662" lets every local user connect (world-writable); use "0660" and service.socket_group`},
		{"a zero request timeout is refused",
			"[service]\nrequest_timeout_sec = 0",
			`config.toml:2: service.request_timeout_sec: 0 must be at least 1`},
		{"zero connections are refused",
			"[service]\nmax_connections = 0\nmax_connections_per_user = 0",
			"config.toml:2: service.max_connections: 0 must be at least 1\nconfig.toml:3: service.max_connections_per_user: 0 must be at least 1"},
		{"more connections per user than in total are refused",
			"[service]\nmax_connections = 4",
			`config.toml: service.max_connections_per_user: 8 must not exceed service.max_connections (4)`},
		{"a negative shutdown grace is refused",
			"[service]\nshutdown_grace_sec = -1",
			`config.toml:2: service.shutdown_grace_sec: -1 must not be negative`},

		{"a relative workspace root is refused",
			"[build]\nworkspace_root = \"srv/ws\"",
			`config.toml:2: build.workspace_root: "srv/ws" must be an absolute path`},
		{"a workspace root with .. is refused",
			"[build]\nworkspace_root = \"/srv/../etc\"",
			`config.toml:2: build.workspace_root: "/srv/../etc" must be a clean absolute path (no trailing "/", "..", "." or "//")`},
		{"a host template without {user} is refused",
			"[build.path_mapping]\nhost_template = \"{workspace_root}/shared\"",
			`config.toml:2: build.path_mapping.host_template: "{workspace_root}/shared" must contain {user}, so that every user gets a host directory of their own`},
		{"an unknown placeholder is refused",
			"[build.path_mapping]\nhost_template = \"/srv/{uid}/{user}\"",
			`config.toml:2: build.path_mapping.host_template: "/srv/{uid}/{user}" uses the unknown placeholder {uid} (known: {user}, {workspace_root})`},
		{"an unclosed brace is refused",
			"[build.path_mapping]\ncontainer_template = \"/home/{user\"",
			`config.toml:2: build.path_mapping.container_template: "/home/{user" has a "{" without a matching "}"`},
		{"a stray closing brace is refused",
			"[build.path_mapping]\ncontainer_template = \"/home/user}\"",
			`config.toml:2: build.path_mapping.container_template: "/home/user}" has a "}" without a matching "{"`},
		{"a container template that is relative once expanded is refused",
			"[build.path_mapping]\ncontainer_template = \"{user}/ws\"",
			`config.toml:2: build.path_mapping.container_template: "{user}/ws" must be an absolute path once expanded (got "user/ws")`},
		{"a host template climbing out with .. is refused",
			"[build.path_mapping]\nhost_template = \"{workspace_root}/../{user}\"",
			`config.toml:2: build.path_mapping.host_template: "{workspace_root}/../{user}" must be a clean path once expanded (no trailing "/", "..", "." or "//"; got "/srv/build-service/workspaces/../user")`},
		{"an empty container template is refused",
			"[build.path_mapping]\ncontainer_template = \"\"",
			`config.toml:2: build.path_mapping.container_template: must not be empty`},
		{"a read-only main workspace mapping is refused",
			"[build.path_mapping]\nmode = \"ro\"",
			`config.toml:2: build.path_mapping.mode: "ro": the workspace mapping is always read-write; mode is for [[build.path_mappings]] entries`},
		{"an extra mapping with an unknown mode is refused",
			"[[build.path_mappings]]\ncontainer_template = \"/cache\"\nhost_template = \"/srv/cache/{user}\"\nmode = \"rx\"",
			`config.toml:4: build.path_mappings[0].mode: "rx" must be "rw" or "ro"`},
		{"an extra mapping without a host template is refused",
			"[[build.path_mappings]]\ncontainer_template = \"/cache\"",
			`config.toml:1: build.path_mappings[0].host_template: must not be empty`},
		{"an extra mapping without {user} on the host is refused",
			"[[build.path_mappings]]\ncontainer_template = \"/cache\"\nhost_template = \"/srv/cache\"",
			`config.toml:3: build.path_mappings[0].host_template: "/srv/cache" must contain {user}, so that every user gets a host directory of their own`},
		{"a second mapping of the same container path is refused",
			"[[build.path_mappings]]\ncontainer_template = \"/c/{user}\"\nhost_template = \"/h1/{user}\"\n[[build.path_mappings]]\ncontainer_template = \"/c/{user}\"\nhost_template = \"/h2/{user}\"",
			`config.toml:5: build.path_mappings[1].container_template: "/c/{user}" maps the same container path as build.path_mappings[0]`},
		{"an extra mapping shadowing the workspace mapping is refused",
			"[build]\npath_mappings = [{container_template = \"{workspace_root}/{user}\", host_template = \"/other/{user}\"}]",
			`config.toml:2: build.path_mappings[0].container_template: "{workspace_root}/{user}" maps the same container path as build.path_mapping`},

		{"an empty command table is refused",
			"[build.commands]",
			`config.toml:1: build.commands: at least one command is required, e.g. make = "/usr/bin/make"`},
		{"a command name with a slash is refused",
			"[build.commands]\n\"bin/make\" = \"/usr/bin/make\"",
			`config.toml:2: build.commands: "bin/make" is not a plain command name (a letter or digit, then letters, digits, ".", "_", "+" or "-")`},
		{"a command given as a bare name is refused",
			"[build.commands]\nmake = \"make\"",
			`config.toml:2: build.commands.make: "make" must be an absolute path`},
		{"a command path with .. is refused",
			"[build.commands]\nmake = \"/usr/bin/../local/bin/make\"",
			`config.toml:2: build.commands.make: "/usr/bin/../local/bin/make" must be a clean absolute path (no trailing "/", "..", "." or "//")`},

		{"a zero default timeout is refused",
			"[build.timeouts]\ndefault_sec = 0",
			`config.toml:2: build.timeouts.default_sec: 0 must be at least 1`},
		{"a max timeout below the default is refused",
			"[build.timeouts]\nmax_sec = 60",
			`config.toml:2: build.timeouts.max_sec: 60 must be at least build.timeouts.default_sec (600)`},
		{"a zero kill grace is refused",
			"[build.timeouts]\nkill_grace_sec = 0",
			`config.toml:2: build.timeouts.kill_grace_sec: 0 must be at least 1`},

		{"HOME on the allowlist is refused",
			"[build.environment]\nallow = [\"HOME\"]",
			`config.toml:2: build.environment.allow: "HOME" is set by the service from the host account; remove it`},
		{"USER on the allowlist is refused",
			"[build.environment]\nallow = [\"USER\"]",
			`config.toml:2: build.environment.allow: "USER" is set by the service from the host account; remove it`},
		{"LOGNAME on the allowlist is refused",
			"[build.environment]\nallow = [\"LOGNAME\"]",
			`config.toml:2: build.environment.allow: "LOGNAME" is set by the service from the host account; remove it`},
		{"PATH on the allowlist is refused",
			"[build.environment]\nallow = [\"PATH\"]",
			`config.toml:2: build.environment.allow: "PATH" is set by the service from build.environment.path; remove it`},
		{"LD_PRELOAD on the allowlist is refused",
			"[build.environment]\nallow = [\"LD_PRELOAD\"]",
			`config.toml:2: build.environment.allow: "LD_PRELOAD" must never come from a client: it changes which libraries every program of the build loads`},
		{"LD_LIBRARY_PATH on the allowlist is refused",
			"[build.environment]\nallow = [\"LD_LIBRARY_PATH\"]",
			`config.toml:2: build.environment.allow: "LD_LIBRARY_PATH" must never come from a client: it changes which libraries every program of the build loads`},
		{"BASH_ENV on the allowlist is refused",
			"[build.environment]\nallow = [\"BASH_ENV\"]",
			`config.toml:2: build.environment.allow: "BASH_ENV" must never come from a client: it makes every shell the build starts run a file of the client's choosing`},
		{"ENV on the allowlist is refused",
			"[build.environment]\nallow = [\"ENV\"]",
			`config.toml:2: build.environment.allow: "ENV" must never come from a client: it makes every shell the build starts run a file of the client's choosing`},
		{"IFS on the allowlist is refused",
			"[build.environment]\nallow = [\"IFS\"]",
			`config.toml:2: build.environment.allow: "IFS" must never come from a client: it changes how the shells that run make's recipes parse and run commands`},
		{"SHELL on the allowlist is refused",
			"[build.environment]\nallow = [\"SHELL\"]",
			`config.toml:2: build.environment.allow: "SHELL" must never come from a client: it changes how the shells that run make's recipes parse and run commands`},
		{"GCONV_PATH on the allowlist is refused",
			"[build.environment]\nallow = [\"GCONV_PATH\"]",
			`config.toml:2: build.environment.allow: "GCONV_PATH" must never come from a client: the C library loads files or changes behaviour by it in every program of the build`},
		{"NOTIFY_SOCKET on the allowlist is refused",
			"[build.environment]\nallow = [\"NOTIFY_SOCKET\"]",
			`config.toml:2: build.environment.allow: "NOTIFY_SOCKET" belongs to the daemon's systemd interface; a build must never see it`},
		{"a variable name with a dash is refused",
			"[build.environment]\nallow = [\"MY-VAR\"]",
			`config.toml:2: build.environment.allow: "MY-VAR" is not a valid variable name`},
		{"a variable listed twice is refused",
			"[build.environment]\nallow = [\"CFLAGS\", \"CFLAGS\"]",
			`config.toml:2: build.environment.allow: "CFLAGS" is listed twice`},
		{"an empty build PATH is refused",
			"[build.environment]\npath = \"\"",
			`config.toml:2: build.environment.path: must not be empty`},
		{"a build PATH with an empty element (the cwd) is refused",
			"[build.environment]\npath = \"/usr/bin::/bin\"",
			`config.toml:2: build.environment.path: element "" is not an absolute directory (an empty or relative element makes the build search its working directory)`},
		{"a build PATH with a relative element is refused",
			"[build.environment]\npath = \"bin:/usr/bin\"",
			`config.toml:2: build.environment.path: element "bin" is not an absolute directory (an empty or relative element makes the build search its working directory)`},

		{"a deny group with a colon is refused",
			"[build.identity]\ndeny_groups = [\"root\", \"a:b\"]",
			`config.toml:2: build.identity.deny_groups: "a:b" is not a valid group name`},

		{"a negative pids_max is refused",
			"[build.limits]\npids_max = -1",
			`config.toml:2: build.limits.pids_max: -1 must not be negative (0 means no limit)`},
		{"a memory_max with an unknown suffix is refused",
			"[build.limits]\nmemory_max = \"8GB\"",
			`config.toml:2: build.limits.memory_max: invalid size "8GB": want a number of bytes with an optional K, M, G or T suffix, e.g. "512M"`},
		{"a cpu_max as a percentage is refused",
			"[build.limits]\ncpu_max = \"50%\"",
			`config.toml:2: build.limits.cpu_max: "50%" must be "" (no limit) or "QUOTA PERIOD" in microseconds, e.g. "50000 100000" for half a CPU or "max 100000"`},
		{"a cpu_max period above a second is refused",
			"[build.limits]\ncpu_max = \"50000 2000000\"",
			`config.toml:2: build.limits.cpu_max: "50000 2000000" must be "" (no limit) or "QUOTA PERIOD" in microseconds, e.g. "50000 100000" for half a CPU or "max 100000"`},
		{"zero builds per user are refused",
			"[build.limits]\nmax_builds_per_user = 0",
			`config.toml:2: build.limits.max_builds_per_user: 0 must be at least 1`},
		{"zero builds in total are refused",
			"[build.limits]\nmax_builds_total = 0",
			`config.toml:2: build.limits.max_builds_total: 0 must be at least 1`},
		{"more builds per user than in total are refused",
			"[build.limits]\nmax_builds_total = 2",
			`config.toml: build.limits.max_builds_per_user: 4 must not exceed build.limits.max_builds_total (2)`},

		{"enabling the sandbox, which does not exist yet, is refused",
			"[build.sandbox]\nenabled = true",
			`config.toml:2: build.sandbox.enabled: true is not supported yet: the per-build sandbox is not implemented; set it to false`},
		{"a relative sandbox path is refused",
			"[build.sandbox]\nwritable = [\"/tmp\", \"cache\"]",
			`config.toml: build.sandbox.writable[1]: "cache" must be an absolute path once expanded (got "cache")`},
		{"an unknown placeholder in a sandbox path is refused",
			"[build.sandbox]\nreadable = [\"/opt/{group}\"]",
			`config.toml: build.sandbox.readable[0]: "/opt/{group}" uses the unknown placeholder {group} (known: {user}, {workspace_root})`},

		{"a relative policy directory is refused",
			"[policy]\ndirectory = \"policies\"",
			`config.toml:2: policy.directory: "policies" must be an absolute path`},

		{"an unknown log level is refused",
			"[logging]\nlevel = \"verbose\"",
			`config.toml:2: logging.level: "verbose" must be one of debug, info, warn, error`},
		{"a relative log directory is refused",
			"[logging]\ndirectory = \"log\"",
			`config.toml:2: logging.directory: "log" must be an absolute path`},
		{"a zero rotation size is refused",
			"[logging]\nmax_size_mb = 0",
			`config.toml:2: logging.max_size_mb: 0 must be at least 1`},
		{"a negative backup count is refused",
			"[logging]\nmax_backups = -1",
			`config.toml:2: logging.max_backups: -1 must not be negative`},
		{"a decision log in a relative subdirectory is refused",
			"[logging]\ndecision_log = \"sub/decisions.log\"",
			`config.toml:2: logging.decision_log: "sub/decisions.log" must be a file name (in logging.directory) or an absolute path`},
		{"a decision log file name without a log directory is refused",
			"[logging]\ndirectory = \"\"",
			`config.toml: logging.decision_log: "decisions.log" is a file name in logging.directory, which is empty; give an absolute path or set logging.directory`},
		{"logging nowhere is refused",
			"[logging]\nconsole = false\ndirectory = \"\"\ndecision_log = \"\"",
			`config.toml:2: logging.console: false while logging.directory is empty: the daemon would log nowhere`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.toml+"\n"), "config.toml")
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("wrong message\n got: %s\nwant: %s", got, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			var p *Problem
			if !errors.As(err, &p) || p.Key == "" {
				t.Errorf("error does not carry a Problem naming the key: %#v", err)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	cases := []struct {
		name string
		toml string
	}{
		{"container paths that differ from host paths", "[build.path_mapping]\ncontainer_template = \"/home/{user}\"\nhost_template = \"/srv/ws/{user}/workspace\""},
		{"a container path shared by every user", "[build.path_mapping]\ncontainer_template = \"/workspace\""},
		{"a read-only extra mapping", "[[build.path_mappings]]\ncontainer_template = \"/opt/sdk\"\nhost_template = \"/srv/sdk/{user}\"\nmode = \"ro\""},
		{"MAKEFLAGS, GNUMAKEFLAGS and MAKEFILES on the allowlist (the policy confines them)", "[build.environment]\nallow = [\"MAKEFLAGS\", \"GNUMAKEFLAGS\", \"MAKEFILES\"]"},
		{"an empty allowlist", "[build.environment]\nallow = []"},
		{"a socket in root's group with mode 0600", "[service]\nsocket_group = \"\"\nsocket_mode = \"0600\""},
		{"a socket mode written 0o660", "[service]\nsocket_mode = \"0o660\""},
		{"no limits at all", "[build.limits]\npids_max = 0\nmemory_max = \"\"\ncpu_max = \"\""},
		{"a cpu_max of max alone", "[build.limits]\ncpu_max = \"max\""},
		{"a cpu_max with quota and period", "[build.limits]\ncpu_max = \"50000 100000\""},
		{"an absolute decision log without a log directory", "[logging]\ndirectory = \"\"\ndecision_log = \"/var/log/decisions.log\""},
		{"no decision log", "[logging]\ndecision_log = \"\""},
		{"a zero shutdown grace", "[service]\nshutdown_grace_sec = 0"},
		{"max_sec equal to default_sec", "[build.timeouts]\ndefault_sec = 60\nmax_sec = 60"},
		{"an operator policy directory", "[policy]\ndirectory = \"/etc/build-service/policy\""},
		{"a command with a dotted name", "[build.commands]\n\"make-4.3\" = \"/usr/bin/make\""},
		{"sandbox paths with templates", "[build.sandbox]\nwritable = [\"{workspace_root}/{user}/.cache\"]\nreadable = [\"/opt\"]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.toml+"\n"), "config.toml"); err != nil {
				t.Fatalf("Parse refused it: %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblemOnItsOwnLine(t *testing.T) {
	doc := "[service]\nsocket_mode = \"0777\"\n[build.timeouts]\ndefault_sec = 0\n[logging]\nlevel = \"loud\"\n"
	_, err := Parse([]byte(doc), "config.toml")
	want := "config.toml:2: service.socket_mode: \"0777\" lets every local user connect (world-writable); use \"0660\" and service.socket_group\n" +
		"config.toml:4: build.timeouts.default_sec: 0 must be at least 1\n" +
		"config.toml:6: logging.level: \"loud\" must be one of debug, info, warn, error"
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestValidateOnAConfigBuiltInGoHasNoFileOrLine(t *testing.T) {
	c := Default()
	c.Build.Timeouts.KillGraceSec = 0
	err := c.Validate()
	want := "build.timeouts.kill_grace_sec: 0 must be at least 1"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestThousandsOfProblemsAreReportedInBrief(t *testing.T) {
	doc := "[build.environment]\nallow = [" + strings.Repeat(`"LD_X", `, 1000) + "]\n"
	_, err := Parse([]byte(doc), "config.toml")
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxProblems+1 || lines[maxProblems] != "config.toml: ... and 950 more problems" {
		t.Fatalf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}
