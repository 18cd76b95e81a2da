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
// margin), HTTP/2 when the server offers it, and
// Proxy = [http.ProxyFromEnvironment], so HTTPS_PROXY, HTTP_PROXY and
// NO_PROXY are honoured.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
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
