package executor

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/build-service/build-service/protocol"
)

// readSize is the most one pump reads (and so holds) at a time. With the
// pipe's own buffer (64 KiB by default) it bounds what a build can have in
// flight per stream: a slow client makes the build block in write(2), it
// never grows the daemon.
const readSize = 32 << 10

// output serialises the two pumps onto one emit: events of one build never
// interleave, and emit is never called after Run returns.
type output struct {
	mu     sync.Mutex
	emit   func(protocol.Event) error
	failed bool
	err    error
	failCh chan struct{} // closed on the first emit error
}

func newOutput(emit func(protocol.Event) error) *output {
	return &output{emit: emit, failCh: make(chan struct{})}
}

// send emits one output event unless emit failed before; after a failure
// the output is read and dropped so the build does not block on its pipe
// while it is being stopped.
func (o *output) send(stream, data string) {
	if data == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed {
		return
	}
	if err := o.emit(protocol.OutputEvent(stream, data)); err != nil {
		o.failed = true
		o.err = err
		close(o.failCh)
	}
}

// pump moves one stream from r to emit as it comes. progress counts bytes
// read and emitting says whether the pump is inside emit (blocked on a slow
// client, which is progress too), so Run can tell an idle pipe held open by
// a stray from a busy one.
type pump struct {
	stream    string
	r         io.ReadCloser
	done      chan struct{}
	progress  atomic.Int64
	emitting  atomic.Bool
	closeOnce sync.Once
}

func (o *output) start(stream string, r io.ReadCloser) *pump {
	p := &pump{stream: stream, r: r, done: make(chan struct{})}
	go o.run(p)
	return p
}

func (o *output) run(p *pump) {
	defer close(p.done)
	defer p.close()
	var u protocol.UTF8Stream
	buf := make([]byte, readSize)
	for {
		n, err := p.r.Read(buf)
		if n > 0 {
			p.progress.Add(int64(n))
			p.emitting.Store(true)
			o.send(p.stream, u.Feed(buf[:n]))
			p.emitting.Store(false)
		}
		if err != nil {
			break
		}
	}
	// A final partial line needs nothing special (it was sent as read); a
	// final partial UTF-8 sequence comes out as U+FFFD.
	o.send(p.stream, u.Flush())
}

// close closes the read end: a Read blocked on it returns, and the pump
// ends after emitting what it already has.
func (p *pump) close() { p.closeOnce.Do(func() { p.r.Close() }) }
