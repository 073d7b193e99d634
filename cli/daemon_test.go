package cli

import (
	"bufio"
	"net"
	"path/filepath"
	"testing"

	"github.com/build-service/build-service/protocol"
)

// fakeDaemon is a real unix-socket server that stands in for build-service:
// it reads one request line per connection, hands it to the test's script,
// and lets the script answer with events and read control lines.
type fakeDaemon struct {
	t      *testing.T
	path   string
	ln     *net.UnixListener
	script func(c *daemonConn)
	done   chan struct{}
}

// daemonConn is one accepted connection as the script sees it.
type daemonConn struct {
	t   *testing.T
	c   *net.UnixConn
	r   *bufio.Reader
	Raw []byte            // the request line exactly as received
	Req *protocol.Request // nil when the strict decoder refused it
	Err error             // the decoder's error
}

func startDaemon(t *testing.T, script func(c *daemonConn)) *fakeDaemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "build.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	d := &fakeDaemon{t: t, path: path, ln: ln, script: script, done: make(chan struct{})}
	go d.serve()
	t.Cleanup(func() {
		ln.Close()
		<-d.done
	})
	return d
}

func (d *fakeDaemon) serve() {
	defer close(d.done)
	for {
		c, err := d.ln.AcceptUnix()
		if err != nil {
			return
		}
		dc := &daemonConn{t: d.t, c: c, r: bufio.NewReader(c)}
		raw, err := protocol.ReadLine(dc.r, protocol.MaxRequestBytes)
		if err == nil {
			dc.Raw = raw
			dc.Req, dc.Err = protocol.DecodeRequest(raw)
		} else {
			dc.Err = err
		}
		d.script(dc)
		c.Close()
	}
}

// send writes events; a write error means the client went away, which some
// tests expect, so it is only reported through the return value.
func (c *daemonConn) send(evs ...protocol.Event) error {
	for _, ev := range evs {
		if err := protocol.WriteEvent(c.c, ev); err != nil {
			return err
		}
	}
	return nil
}

func (c *daemonConn) sendRaw(s string) {
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Errorf("fake daemon: write: %v", err)
	}
}

// control reads the next control line, strictly decoded.
func (c *daemonConn) control() (*protocol.Control, error) {
	line, err := protocol.ReadLine(c.r, protocol.MaxControlBytes)
	if err != nil {
		return nil, err
	}
	return protocol.DecodeControl(line)
}

func exitEv(code int) protocol.Event { return protocol.ExitEvent(code, false) }
