package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptrace"
	"sync"
	"time"
)

// ErrWriteDeadline is wrapped by the Err of a [NotSent] result: the write
// deadline ([WithWriteDeadline]) passed before the request was written.
var ErrWriteDeadline = errors.New("delivery: write deadline passed before the request was written")

type writeDeadlineKey struct{}

// WithWriteDeadline returns a copy of ctx that gives the [Deliverer.Deliver]
// call made with it a write deadline t: connecting (dial, proxy CONNECT,
// TLS handshake) and writing the whole request must be done by t. If they
// are not, the request is abandoned unsent and Deliver returns [NotSent].
// Once the request is written the deadline no longer applies: the answer
// is awaited as usual, up to the request timeout ([WithTimeout]) and ctx's
// own deadline. A zero t sets no deadline. The deadline is wall-clock time
// ([time.Now], not [WithClock]): network deadlines are.
//
// The worker sets it from the rate slot it was granted: the slot counts
// only if the platform sees the request soon enough (within the limiter's
// margin), and a request that cannot leave by then must not leave at all.
//
// Why a context value rather than a Deliver parameter or a Deliverer
// option: the deadline belongs to one call, as ctx's own deadline does,
// and Deliver's signature (which the worker's sender interface mirrors)
// stays as it is; it is not ctx's deadline because that one would also
// cut the wait for the answer short, and a request that was written must
// get its answer.
//
// How it is enforced (see [NotSent] for the guarantee): a timer abandons
// the request if no connection was obtained by t; the connection the
// request is written to gets t as its write deadline (net.Conn
// SetWriteDeadline), so no byte of the request is written after t and a
// request whose writing did not finish by then is incomplete, which no
// server processes. The request counts as written when net/http reports
// it so (httptrace WroteRequest without error). This needs an
// HTTP/1-only transport, as the default client's; see [WithHTTPClient].
func WithWriteDeadline(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, writeDeadlineKey{}, t)
}

// WriteDeadline returns the write deadline [WithWriteDeadline] put in ctx,
// and whether there is one.
func WriteDeadline(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(writeDeadlineKey{}).(time.Time)
	return t, ok && !t.IsZero()
}

// pastDeadline is a write deadline that has passed: every write fails.
var pastDeadline = time.Unix(1, 0)

// sendGuard follows one request through net/http (httptrace) and enforces
// its write deadline.
type sendGuard struct {
	deadline  time.Time // zero: none
	bindConns bool      // set write deadlines on connections (HTTP/1 only)
	cancel    context.CancelCauseFunc

	mu        sync.Mutex
	conn      net.Conn // the last connection obtained for the request
	gotConn   bool
	wrote     bool // net/http wrote the whole request (WroteRequest, no error)
	abandoned bool // the deadline passed before a connection was obtained
	responded bool // the answer began to arrive: never cancel from then on
	done      bool // Do returned
	timer     *time.Timer
}

// newSendGuard returns a guard for a request of ctx (whose cancel is the
// request's) and starts its deadline timer.
func newSendGuard(deadline time.Time, bindConns bool, cancel context.CancelCauseFunc) *sendGuard {
	g := &sendGuard{deadline: deadline, bindConns: bindConns, cancel: cancel}
	if !deadline.IsZero() {
		g.timer = time.AfterFunc(time.Until(deadline), g.expire)
	}
	return g
}

// trace returns the hooks to put in the request's context.
func (g *sendGuard) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GotConn: g.gotConnection,
		GotFirstResponseByte: func() {
			g.mu.Lock()
			g.responded = true
			g.mu.Unlock()
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				g.mu.Lock()
				g.wrote = true
				g.mu.Unlock()
			}
		},
	}
}

// gotConnection sets the connection's write deadline. net/http calls it
// before writing the request on an HTTP/1 connection, which carries no
// other request meanwhile. A connection obtained after the deadline (or
// after the request was abandoned) gets one in the past: the request
// fails without a byte written.
func (g *sendGuard) gotConnection(info httptrace.GotConnInfo) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gotConn = true
	g.conn = info.Conn
	if !g.bindConns || info.Conn == nil {
		return
	}
	switch {
	case g.deadline.IsZero():
		_ = info.Conn.SetWriteDeadline(time.Time{}) // none left from an earlier request
	case g.abandoned || !time.Now().Before(g.deadline):
		_ = info.Conn.SetWriteDeadline(pastDeadline)
	default:
		_ = info.Conn.SetWriteDeadline(g.deadline)
	}
}

// expire runs at the deadline. With no connection yet, the request is
// abandoned: connecting was too slow. With a connection, its write
// deadline does the rest. With a client that is not HTTP/1-only, an
// unwritten request is cancelled, the best that can be done.
func (g *sendGuard) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done || g.wrote || g.responded {
		return
	}
	switch {
	case !g.gotConn:
		g.abandoned = true
		g.cancel(ErrWriteDeadline)
	case !g.bindConns:
		g.cancel(ErrWriteDeadline)
	}
}

// finish stops the timer once Do returned. After a response, the
// connection's write deadline is cleared before it goes back to the pool.
func (g *sendGuard) finish(responded bool) {
	if g.timer != nil {
		g.timer.Stop()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	if responded && g.bindConns && g.conn != nil && !g.deadline.IsZero() {
		_ = g.conn.SetWriteDeadline(time.Time{})
	}
}

// notSent returns the Reason of a NotSent result when the request, which
// failed with an error, provably was not written because of the deadline:
// the client is HTTP/1-only, net/http never reported it written, and the
// deadline passed. "" otherwise (then it may have been sent).
func (g *sendGuard) notSent() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deadline.IsZero() || !g.bindConns || g.wrote {
		return ""
	}
	switch {
	case g.abandoned || !g.gotConn && !time.Now().Before(g.deadline):
		return "not sent: connecting took past the write deadline"
	case !time.Now().Before(g.deadline):
		return "not sent: writing the request took past the write deadline"
	}
	return ""
}

// payloadReader hands net/http a body it does not know to be in memory,
// so that it flushes the headers and writes the body straight to the
// connection inside the write it reports with WroteRequest: a write that
// fails on the deadline is then reported failed. (With a *bytes.Reader it
// would buffer a small request whole, report it written and only then
// flush it.) The Content-Length is set on the request, so nothing is sent
// chunked.
type payloadReader struct{ r *bytes.Reader }

func (p payloadReader) Read(b []byte) (int, error) { return p.r.Read(b) }

func newPayload(b []byte) io.ReadCloser { return io.NopCloser(payloadReader{bytes.NewReader(b)}) }
