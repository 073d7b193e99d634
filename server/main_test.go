package server_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/build-service/build-service/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.DialerMain()
	cleanup, err := installDialer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "install dialer:", err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}
