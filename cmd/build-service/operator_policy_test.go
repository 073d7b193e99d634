package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An operator policy directory replaces the bundled policy: one that allows
// only `make -n` is obeyed end to end, through the daemon and build-cli.
func TestAnOperatorPolicyThatAllowsOnlyMakeDashNIsObeyed(t *testing.T) {
	e := newEnv(t)
	pol := filepath.Join(e.dir, "policy")
	if err := os.Mkdir(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	const rego = `package build_service

service_env := {
	"PATH": data.config.build.environment.path,
	"HOME": input.account.home,
	"USER": input.account.name,
	"LOGNAME": input.account.name,
}

dry_run if {
	input.request.command == "make"
	input.make.options == ["--just-print"]
}

decision := {"allow": true, "reasons": [], "timeout_sec": 60, "env": service_env} if {
	dry_run
} else := {"allow": false, "reasons": ["this host allows only make -n"]}
`
	if err := os.WriteFile(filepath.Join(pol, "only_dry_run.rego"), []byte(rego), 0o644); err != nil {
		t.Fatal(err)
	}
	e.extra = "[policy]\ndirectory = " + quoteTOML(pol) + "\n"
	e.startDaemon(nil)

	for _, c := range []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderrIs string
	}{
		{"make -n prints the commands and runs none", []string{"make", "-n", "all"}, 0, "echo hello $(id -un) from $(pwd)\n", ""},
		{"the long spelling is the same option", []string{"make", "--dry-run", "all"}, 0, "echo hello $(id -un) from $(pwd)\n", ""},
		{"make without -n is refused with the policy's reason", []string{"make", "all"}, 126, "", "this host allows only make -n"},
		{"-n with another option is refused", []string{"make", "-n", "-k", "all"}, 126, "", "this host allows only make -n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.cli(e.alice, e.proj(e.alice), c.args...)
			if r.code != c.code || r.stdout != c.stdout || !strings.Contains(r.stderr, c.stderrIs) {
				t.Errorf("got exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}
