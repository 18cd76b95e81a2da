package robotsim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves a [Sim] on a real 127.0.0.1 listener, like
// net/http/httptest.Server.
type Server struct {
	*Sim
	// URL is the base URL, "http://127.0.0.1:port" ("https://…" with
	// [WithTLS]), without a trailing slash.
	URL string

	srv         *http.Server
	done        chan struct{}
	once        sync.Once
	acceptDelay *atomic.Int64 // nanoseconds; shared with the listener
	cert        *x509.Certificate
}

// ServerOption configures a [Server]; see [NewServer] and [Serve].
type ServerOption func(*serverOptions)

type serverOptions struct {
	acceptDelay time.Duration
	tls         bool
}

// WithAcceptDelay makes the server take no notice of a new connection for
// d: it neither reads from it nor answers on it (a TLS handshake
// included) until d has passed since the connection arrived. It is a slow
// or overloaded front end as a client sees it. Change it with
// [Server.SetAcceptDelay].
//
// Over plain HTTP the operating system still completes the TCP handshake
// and buffers what the client writes, so a client sees its request
// written at once and gets the answer after d; the request is processed
// then, as a real platform behind a stalled front end would. With
// [WithTLS] the client cannot even finish its TLS handshake before d: it
// cannot write its request at all, and a request it gives up on meanwhile
// never reaches the simulator.
func WithAcceptDelay(d time.Duration) ServerOption {
	return func(o *serverOptions) { o.acceptDelay = max(d, 0) }
}

// WithTLS serves HTTPS with a fresh self-signed certificate for 127.0.0.1;
// clients trust it through [Server.TLSClientConfig].
func WithTLS() ServerOption {
	return func(o *serverOptions) { o.tls = true }
}

// NewServer starts a Sim configured by cfg on 127.0.0.1 with a free port.
// It panics when no port can be bound, as httptest.NewServer does. Call
// [Server.Close] when done.
func NewServer(cfg Config, opts ...ServerOption) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("robotsim: listen: %v", err))
	}
	return Serve(ln, New(cfg), opts...)
}

// Serve serves sim on ln until [Server.Close]. It panics if a [WithTLS]
// certificate cannot be made.
func Serve(ln net.Listener, sim *Sim, opts ...ServerOption) *Server {
	var o serverOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	s := &Server{
		Sim:         sim,
		URL:         "http://" + ln.Addr().String(),
		srv:         &http.Server{Handler: sim, ErrorLog: slog.NewLogLogger(sim.log.Handler(), slog.LevelDebug)},
		done:        make(chan struct{}),
		acceptDelay: new(atomic.Int64),
	}
	s.acceptDelay.Store(int64(o.acceptDelay))
	ln = &delayListener{Listener: ln, delay: s.acceptDelay}
	if o.tls {
		cert, leaf, err := selfSigned()
		if err != nil {
			panic(fmt.Sprintf("robotsim: TLS certificate: %v", err))
		}
		s.cert = leaf
		s.URL = "https://" + strings.TrimPrefix(s.URL, "http://")
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("robotsim: serve", "err", err)
		}
	}()
	return s
}

// SetAcceptDelay changes the [WithAcceptDelay] of connections arriving from
// now on.
func (s *Server) SetAcceptDelay(d time.Duration) {
	s.acceptDelay.Store(int64(max(d, 0)))
}

// TLSClientConfig returns a TLS configuration that trusts the server's
// certificate ([WithTLS]); nil for a plain HTTP server.
func (s *Server) TLSClientConfig() *tls.Config {
	if s.cert == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.cert)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Close closes the listener and every connection and waits for the server
// to stop.
func (s *Server) Close() {
	s.once.Do(func() { _ = s.srv.Close() })
	<-s.done
}

// WebhookURL returns the webhook URL of the registered robot with this
// token (DingTalk: URL+"/robot/send?access_token="+token; POPO:
// URL+"/open-apis/robots/v1/hook/"+token; Feishu: URL+"/open-apis/bot/v2/hook/"+token;
// WeCom: URL+"/cgi-bin/webhook/send?key="+token), or "" when there is none.
func (s *Server) WebhookURL(token string) string {
	s.mu.Lock()
	st := s.robots[token]
	s.mu.Unlock()
	if st == nil {
		return ""
	}
	return WebhookURL(s.URL, st.robot.Platform, token)
}

// WebhookURL builds a robot's webhook URL on a simulator at baseURL; "" for
// an unknown platform.
func WebhookURL(baseURL, platform, token string) string {
	switch platform {
	case PlatformDingTalk:
		return baseURL + "/robot/send?access_token=" + url.QueryEscape(token)
	case PlatformPOPO:
		return baseURL + "/open-apis/robots/v1/hook/" + url.PathEscape(token)
	case PlatformFeishu:
		return baseURL + "/open-apis/bot/v2/hook/" + url.PathEscape(token)
	case PlatformWeCom:
		return baseURL + "/cgi-bin/webhook/send?key=" + url.QueryEscape(token)
	}
	return ""
}
