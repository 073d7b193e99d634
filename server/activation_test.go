package server_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/build-service/build-service/server"
)

// These cases never reach fd 3; the real inherited-socket start is in
// cmd/build-service's daemon tests.
func TestListenActivatedIgnoresOrRefusesVariablesThatAreNotForIt(t *testing.T) {
	for _, tc := range []struct {
		name, pid, fds string
		wantErr        string
	}{
		{"no LISTEN_FDS: not activated", "", "", ""},
		{"LISTEN_PID of another process: not ours", "1", "1", ""},
		{"two sockets: refused", "self", "2", "want exactly one socket"},
		{"a count that is not a number: refused", "self", "x", "want a positive count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := tc.pid
			if pid == "self" {
				pid = strconv.Itoa(os.Getpid())
			}
			t.Setenv("LISTEN_PID", pid)
			t.Setenv("LISTEN_FDS", tc.fds)
			t.Setenv("LISTEN_FDNAMES", "x")
			l, ok, err := server.ListenActivated()
			if l != nil || ok {
				t.Fatalf("activated: %v %v", l, ok)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if tc.fds != "" {
				for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
					if _, set := os.LookupEnv(v); set {
						t.Errorf("%s left in the environment", v)
					}
				}
			}
		})
	}
}

func TestNotifySendsReadyReloadingAndStopping(t *testing.T) {
	path := filepath.Join(sockDir(t), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	h := start(t, nil, func(context.Context) (*server.Generation, error) {
		return &server.Generation{Config: testConfig(), Mapper: fakeMapper{}, Engine: &fakeEngine{rev: "rev-2"}}, nil
	})
	if _, set := os.LookupEnv("NOTIFY_SOCKET"); set {
		t.Errorf("NOTIFY_SOCKET left in the environment (builds would inherit it)")
	}
	read := func() string {
		buf := make([]byte, 512)
		nc.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, _, err := nc.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if s := read(); !strings.Contains(s, "READY=1") {
		t.Errorf("first notification %q", s)
	}
	h.srv.Reload(t.Context())
	if s := read(); !strings.HasPrefix(s, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("reload notification %q", s)
	}
	if s := read(); s != "READY=1" {
		t.Errorf("after reload %q", s)
	}
	h.stop()
	if s := read(); s != "STOPPING=1" {
		t.Errorf("stop notification %q", s)
	}
}
