package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/build-service/build-service/internal/testenv"
	"github.com/build-service/build-service/protocol"
)

// TestLoadHonestIdleGarbageAndDisconnectingClientsAtOnce is issue 6's load
// proof: 20 honest builds, 50 connections that never send, 20 garbage
// requests and 10 clients that vanish mid-build, all at once. Every honest
// build must come through intact; afterwards the daemon's fds, goroutines
// and children are back exactly at their idle values, its RSS never went
// past idle + 16 MiB, and it logged one line per refused connection.
func TestLoadHonestIdleGarbageAndDisconnectingClientsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	e := newEnv(t)
	e.extra = `
[build.limits]
max_builds_per_user = 40
max_builds_total = 60
`
	// Enough connections for everyone: this test is about leaks and
	// isolation, the caps have their own tests.
	d := e.startDaemonWith(func(cfg string) string {
		cfg = strings.Replace(cfg, "request_timeout_sec = 3", "request_timeout_sec = 10", 1)
		return strings.Replace(cfg, "[build]\n", "[build]\n", 1)
	}, "max_connections = 200\nmax_connections_per_user = 120\n")
	users := []testenv.User{e.alice, e.bob}
	const disconnecting = 10

	// Warm up every lazy path once (first build, first denial, first
	// refusal), then take the idle values.
	if r := e.cli(e.alice, e.proj(e.alice), "make", "all"); r.code != 0 {
		t.Fatalf("warm-up build: %+v", r)
	}
	e.cli(e.alice, e.proj(e.alice), "make", "-C", "/", "all")
	c := dialAs(t, e.bob, e.sock)
	c.Write([]byte("x\n"))
	readEvents(t, c)
	c.Close()
	time.Sleep(500 * time.Millisecond)
	idle := statOf(d.pid())
	idleG := d.goroutines()
	t.Logf("idle: %d fds, %d goroutines, %d children, RSS %d KiB", idle.fds, idleG, idle.children, idle.rssKiB)
	refusedBefore := d.log.Count("request refused")

	var maxRSS atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if s := statOf(d.pid()); int64(s.rssKiB) > maxRSS.Load() {
				maxRSS.Store(int64(s.rssKiB))
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	fail := func(format string, a ...any) {
		mu.Lock()
		failures = append(failures, strings.TrimSpace(strings.ReplaceAll(sprintf(format, a...), "\n", " | ")))
		mu.Unlock()
	}

	// 50 connections that never send: refused at the request deadline.
	for i := range 50 {
		c := dialAs(t, users[i%2], e.sock)
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs, err := readEvents(t, c)
			if err != nil || len(evs) != 2 || *evs[1].Code != protocol.ExitUnavailable {
				fail("idle connection %d: %v %+v", i, err, evs)
			}
		}()
	}
	// 20 garbage requests, every kind of the list.
	g := garbage()
	for i := range 20 {
		c := dialAs(t, users[i%2], e.sock)
		kind := g[i%len(g)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if kind.close {
				c.Write(kind.raw)
				c.CloseWrite()
			} else if len(kind.raw) > 0 {
				go c.Write(kind.raw)
			}
			evs, err := readEvents(t, c)
			if err != nil || len(evs) != 2 || *evs[1].Code != protocol.ExitUnavailable {
				fail("garbage %q: %v %+v", kind.name, err, evs)
			}
		}()
	}
	// 10 clients that start a long build and vanish once it runs.
	for i := range disconnecting {
		u := users[i%2]
		c := dialAs(t, u, e.sock)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := protocol.EncodeRequest(&protocol.Request{SchemaVersion: "1", Command: "make", Args: []string{"slow"}, Cwd: e.proj(u)})
			c.Write(req)
			buf := make([]byte, 4096)
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			var got strings.Builder
			for !strings.Contains(got.String(), "started") {
				n, err := c.Read(buf)
				if err != nil {
					fail("disconnecting client %d: %v after %q", i, err, got.String())
					break
				}
				got.Write(buf[:n])
			}
			c.Close()
		}()
	}
	// 20 honest builds through the real client.
	for i := range 20 {
		u := users[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.cli(u, e.proj(u), "make", "all")
			want := "hello " + u.Name + " from " + e.proj(u) + "\n"
			if r.code != 0 || r.stdout != want {
				fail("honest build %d as %s: %+v", i, u.Name, r)
			}
		}()
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}

	// Back to idle, exactly.
	var now procStat
	var nowG int
	deadline := time.Now().Add(30 * time.Second)
	for {
		now = statOf(d.pid())
		nowG = d.goroutines()
		if now.fds == idle.fds && now.children == idle.children && nowG == idleG && len(sleepers()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("not back to idle after 30 s: fds %d (idle %d), goroutines %d (idle %d), children %d (idle %d), build processes %v",
				now.fds, idle.fds, nowG, idleG, now.children, idle.children, sleepers())
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stopSampling)
	<-sampled
	t.Logf("after: %d fds, %d goroutines, %d children; max RSS %d KiB (idle %d)", now.fds, nowG, now.children, maxRSS.Load(), idle.rssKiB)
	if maxRSS.Load() > int64(idle.rssKiB+16*1024) {
		t.Errorf("RSS peaked at %d KiB, over idle %d KiB + 16 MiB", maxRSS.Load(), idle.rssKiB)
	}
	if n := d.log.Count("request refused") - refusedBefore; n != 70 {
		t.Errorf("%d 'request refused' log lines, want one per refused connection (70)", n)
	}
	if n := d.log.Count("client_gone=true"); n != 10 {
		t.Errorf("%d builds logged as client_gone, want 10", n)
	}
	if n := d.log.Count("cancelled=true"); n < 10 {
		t.Errorf("%d builds logged as cancelled, want 10", n)
	}
}
