package cli

import (
	"strings"
	"testing"

	"github.com/build-service/build-service/config"
)

// DESIGN.md: the client's default list is the sample config's allowlist, so
// a container with no BUILD_SERVICE_ENV sends exactly what a stock daemon
// would pass on.
func TestDefaultEnvIsTheSampleAllowlist(t *testing.T) {
	sample, err := config.Load("../config/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := DefaultEnv, strings.Join(sample.Build.Environment.Allow, ","); got != want {
		t.Fatalf("cli.DefaultEnv = %q, sample config allow = %q", got, want)
	}
}
