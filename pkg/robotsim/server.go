package robotsim

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
)

// Server serves a [Sim] on a real 127.0.0.1 listener, like
// net/http/httptest.Server.
type Server struct {
	*Sim
	// URL is the base URL, "http://127.0.0.1:port", without a trailing slash.
	URL string

	srv  *http.Server
	done chan struct{}
	once sync.Once
}

// NewServer starts a Sim configured by cfg on 127.0.0.1 with a free port.
// It panics when no port can be bound, as httptest.NewServer does. Call
// [Server.Close] when done.
func NewServer(cfg Config) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("robotsim: listen: %v", err))
	}
	return Serve(ln, New(cfg))
}

// Serve serves sim on ln until [Server.Close].
func Serve(ln net.Listener, sim *Sim) *Server {
	s := &Server{
		Sim:  sim,
		URL:  "http://" + ln.Addr().String(),
		srv:  &http.Server{Handler: sim},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("robotsim: serve", "err", err)
		}
	}()
	return s
}

// Close closes the listener and every connection and waits for the server
// to stop.
func (s *Server) Close() {
	s.once.Do(func() { _ = s.srv.Close() })
	<-s.done
}

// WebhookURL returns the webhook URL of the registered robot with this
// token (DingTalk: URL+"/robot/send?access_token="+token; POPO:
// URL+"/open-apis/robots/v1/hook/"+token), or "" when there is none.
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
	}
	return ""
}
