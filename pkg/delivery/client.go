package delivery

import (
	"net"
	"net/http"
	"time"
)

// DefaultTimeout bounds one delivery request, response body included.
const DefaultTimeout = 10 * time.Second

// NewTransport returns the tuned transport of the default client: keep-alive
// connections shared by all deliveries (up to 64 idle per host), dial and
// TLS handshake bounded at 2s each (a request reaches the platform at most
// ~4s after its rate slot was granted, within the limiter's default 5s
// margin; [WithWriteDeadline] bounds it per call), and
// Proxy = [http.ProxyFromEnvironment], so HTTPS_PROXY, HTTP_PROXY and
// NO_PROXY are honoured.
//
// It speaks HTTP/1.1 only: one request per connection at a time is what
// lets a write deadline bound exactly one request's writes and tell
// for sure that a request was not written ([NotSent]). HTTP/2's
// multiplexing buys nothing at a robot's rate of a few messages a minute.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		Protocols:             protocols,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   2 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// NewHTTPClient returns a client over [NewTransport] with an overall
// timeout per request and redirects not followed: a webhook that redirects
// is misconfigured, and a redirected POST would lose its body.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: NewTransport(),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// http1Only reports whether c sends over an [http.Transport] limited to
// HTTP/1 (as [NewTransport]'s), so that a connection carries one request
// at a time and a request's write can be bounded and observed exactly.
func http1Only(c *http.Client) bool {
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr == nil || tr.Protocols == nil {
		return false
	}
	p := tr.Protocols
	return p.HTTP1() && !p.HTTP2() && !p.UnencryptedHTTP2()
}
