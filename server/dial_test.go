package server_test

import (
	"net"
	"os"
	"testing"

	"github.com/build-service/build-service/internal/testenv"
)

// dialerBin is a copy of this test binary the test users can run; see
// testenv.DialAs.
var dialerBin string

// installDialer puts the dialer in a directory the test users can search.
func installDialer() (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "bs-dialer-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755)
	if dialerBin, err = testenv.InstallDialer(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return func() { os.RemoveAll(dir) }, nil
}

// dialAs connects to path as u, so the server sees u as its peer.
func dialAs(t *testing.T, u testenv.User, path string) *net.UnixConn {
	t.Helper()
	return testenv.DialAs(t, dialerBin, u, path)
}
