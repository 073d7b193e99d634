package server_test

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(dialerEnv); path != "" {
		dialerMain(path)
	}
	cleanup, err := installDialer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "install dialer:", err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}
