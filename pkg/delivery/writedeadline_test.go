package delivery_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/delivery"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/robotsim"
	"github.com/stretchr/testify/require"
)

const wdToken = "writeDeadlineToken0123"

// tlsSim starts a TLS simulator with one DingTalk robot that ignores new
// connections for delay, and a Deliverer over the default (HTTP/1-only)
// transport that trusts it.
func tlsSim(t *testing.T, delay time.Duration) (*robotsim.Server, *delivery.Deliverer, delivery.Robot) {
	t.Helper()
	srv := robotsim.NewServer(robotsim.Config{}, robotsim.WithTLS(), robotsim.WithAcceptDelay(delay))
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: wdToken}))
	client := delivery.NewHTTPClient(5 * time.Second)
	client.Transport.(*http.Transport).TLSClientConfig = srv.TLSClientConfig()
	d, err := delivery.New(delivery.WithHTTPClient(client))
	require.NoError(t, err)
	return srv, d, delivery.Robot{Name: "wd", Platform: delivery.PlatformDingTalk, Webhook: srv.WebhookURL(wdToken)}
}

func wdEnv(id string) *envelope.Envelope {
	return simEnv(id, envelope.Message{Text: &envelope.Text{Content: "deadline " + id}})
}

func requireNotSent(t *testing.T, res delivery.Result, reason string) {
	t.Helper()
	require.Equal(t, delivery.NotSent, res.Outcome, "%+v", res)
	require.Contains(t, res.Reason, reason)
	require.ErrorIs(t, res.Err, delivery.ErrWriteDeadline)
	require.Zero(t, res.HTTPStatus)
	require.Zero(t, res.ErrCode)
	require.Zero(t, res.RetryAfter)
}

// TestWriteDeadlineSlowTLSAcceptIsNotSent: the simulator does not get to
// the TLS handshake before the deadline, so the request is abandoned
// unsent, promptly, and the simulator never records it, even after the
// delay, when it does handshake; a call with a generous deadline is
// delivered.
func TestWriteDeadlineSlowTLSAcceptIsNotSent(t *testing.T) {
	const delay = 500 * time.Millisecond
	srv, d, robot := tlsSim(t, delay)

	start := time.Now()
	res := d.Deliver(delivery.WithWriteDeadline(context.Background(), start.Add(100*time.Millisecond)), robot, wdEnv("late"))
	requireNotSent(t, res, "connecting")
	require.Less(t, time.Since(start), delay, "abandoned at the deadline, not after the delay")

	ok := d.Deliver(delivery.WithWriteDeadline(context.Background(), time.Now().Add(3*time.Second)), robot, wdEnv("in-time"))
	require.Equal(t, delivery.Success, ok.Outcome, "%+v", ok)

	// Past the abandoned connection's delay (its handshake completes in
	// the background), nothing but the second message arrived.
	time.Sleep(time.Until(start.Add(delay + 200*time.Millisecond)))
	reqs := srv.Requests(wdToken)
	require.Len(t, reqs, 1, "%+v", reqs)
	require.Equal(t, "in-time", reqs[0].MsgUUID)
	require.Len(t, srv.Received(wdToken), 1)
}

// TestWriteDeadlineAlreadyPassedIsNotSent: a deadline that has passed
// when Deliver is called sends nothing.
func TestWriteDeadlineAlreadyPassedIsNotSent(t *testing.T) {
	srv, d, robot := tlsSim(t, 0)
	res := d.Deliver(delivery.WithWriteDeadline(context.Background(), time.Now().Add(-time.Millisecond)), robot, wdEnv("past"))
	requireNotSent(t, res, "had passed")
	require.Empty(t, srv.Requests(wdToken))
}

// TestWriteDeadlineDoesNotBoundTheAnswer: over plain HTTP a slow-accepting
// server's kernel takes the request at once, so it is written before the
// deadline; the answer, after the delay, is awaited with the normal
// timeout.
func TestWriteDeadlineDoesNotBoundTheAnswer(t *testing.T) {
	const delay = 300 * time.Millisecond
	srv := robotsim.NewServer(robotsim.Config{}, robotsim.WithAcceptDelay(delay))
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: wdToken}))
	d, err := delivery.New()
	require.NoError(t, err)
	robot := delivery.Robot{Name: "wd", Platform: delivery.PlatformDingTalk, Webhook: srv.WebhookURL(wdToken)}

	start := time.Now()
	res := d.Deliver(delivery.WithWriteDeadline(context.Background(), start.Add(50*time.Millisecond)), robot, wdEnv("slow-answer"))
	require.Equal(t, delivery.Success, res.Outcome, "%+v", res)
	require.GreaterOrEqual(t, time.Since(start), delay)
	require.Len(t, srv.Received(wdToken), 1)
}

// TestWriteDeadlineSlowProxyConnectIsNotSent: a proxy that never answers
// CONNECT holds the request past the deadline; it is abandoned unsent and
// the proxy saw nothing but the CONNECT.
func TestWriteDeadlineSlowProxyConnectIsNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	seen := make(chan string, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				req, err := http.ReadRequest(r)
				if err != nil {
					return
				}
				seen <- req.Method + " " + req.Host
				_, _ = io.Copy(io.Discard, r) // never answers; reads until the client goes
			}()
		}
	}()
	proxyURL, err := url.Parse("http://" + ln.Addr().String())
	require.NoError(t, err)
	d, err := delivery.New(delivery.WithProxy(http.ProxyURL(proxyURL)))
	require.NoError(t, err)
	robot := delivery.Robot{Name: "px", Platform: delivery.PlatformDingTalk,
		Webhook: "https://oapi.dingtalk.invalid/robot/send?access_token=" + wdToken}

	res := d.Deliver(delivery.WithWriteDeadline(context.Background(), time.Now().Add(100*time.Millisecond)), robot, wdEnv("via-proxy"))
	requireNotSent(t, res, "connecting")
	requireNoSecrets(t, res, wdToken)
	require.Equal(t, "CONNECT oapi.dingtalk.invalid:443", <-seen)
	require.Empty(t, seen)
}

// TestWriteDeadlineStalledWriteIsNotSent: a server that reads the headers
// and then stops reading stalls the body's write (a net.Pipe buffers
// nothing); at the deadline the write fails, the result is NotSent, and
// what the server got is not a complete request: its body is short of
// its Content-Length.
func TestWriteDeadlineStalledWriteIsNotSent(t *testing.T) {
	clientEnd, serverEnd := net.Pipe()
	t.Cleanup(func() { _ = clientEnd.Close(); _ = serverEnd.Close() })
	tr := delivery.NewTransport()
	tr.Proxy = nil
	tr.DialContext = func(context.Context, string, string) (net.Conn, error) { return clientEnd, nil }
	d, err := delivery.New(delivery.WithHTTPClient(&http.Client{Transport: tr}))
	require.NoError(t, err)

	gotHeaders := make(chan textproto.MIMEHeader, 1)
	r := bufio.NewReader(serverEnd)
	go func() {
		tp := textproto.NewReader(r)
		if _, err := tp.ReadLine(); err != nil { // request line
			close(gotHeaders)
			return
		}
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			close(gotHeaders)
			return
		}
		gotHeaders <- h // and read nothing more until the test does
	}()

	robot := delivery.Robot{Name: "pipe", Platform: delivery.PlatformDingTalk, Webhook: "http://pipe.invalid/robot/send?access_token=" + wdToken}
	res := d.Deliver(delivery.WithWriteDeadline(context.Background(), time.Now().Add(200*time.Millisecond)), robot, wdEnv("stalled"))
	requireNotSent(t, res, "writing")

	h, ok := <-gotHeaders
	require.True(t, ok, "the server got the headers")
	n, err := strconv.Atoi(h.Get("Content-Length"))
	require.NoError(t, err)
	require.Positive(t, n)
	body := make([]byte, n)
	got, err := io.ReadFull(r, body)
	require.Error(t, err, "the connection was closed short of the body")
	require.Less(t, got, n, "the body is incomplete")
}

// TestWriteDeadlineWithOwnClientIsNeverNotSent: a client that is not
// HTTP/1-only cannot tell for sure that a request did not leave; the
// request is still cut at the deadline, as a Retryable maybe-sent.
func TestWriteDeadlineWithOwnClientIsNeverNotSent(t *testing.T) {
	srv := robotsim.NewServer(robotsim.Config{}, robotsim.WithTLS(), robotsim.WithAcceptDelay(500*time.Millisecond))
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddRobot(robotsim.Robot{Platform: robotsim.PlatformDingTalk, Token: wdToken}))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: srv.TLSClientConfig()}}
	d, err := delivery.New(delivery.WithHTTPClient(client))
	require.NoError(t, err)
	robot := delivery.Robot{Name: "own", Platform: delivery.PlatformDingTalk, Webhook: srv.WebhookURL(wdToken)}

	start := time.Now()
	res := d.Deliver(delivery.WithWriteDeadline(context.Background(), start.Add(100*time.Millisecond)), robot, wdEnv("own"))
	require.Equal(t, delivery.Retryable, res.Outcome, "%+v", res)
	require.Contains(t, res.Reason, "may have been sent")
	require.ErrorIs(t, res.Err, delivery.ErrWriteDeadline)
	require.Less(t, time.Since(start), 500*time.Millisecond)
}

func TestWriteDeadlineContext(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		ctx  context.Context
		want time.Time
		ok   bool
	}{
		{"none", context.Background(), time.Time{}, false},
		{"set", delivery.WithWriteDeadline(context.Background(), at), at, true},
		{"zero sets none", delivery.WithWriteDeadline(context.Background(), time.Time{}), time.Time{}, false},
		{"inner wins", delivery.WithWriteDeadline(delivery.WithWriteDeadline(context.Background(), at), at.Add(time.Hour)), at.Add(time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := delivery.WriteDeadline(tt.ctx)
			require.Equal(t, tt.ok, ok)
			require.True(t, tt.want.Equal(got))
		})
	}
}
