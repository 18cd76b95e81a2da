package delivery

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultTransportUsesProxyFromEnvironment(t *testing.T) {
	tr := NewTransport()
	require.Equal(t, reflect.ValueOf(http.ProxyFromEnvironment).Pointer(), reflect.ValueOf(tr.Proxy).Pointer())
	require.Equal(t, 64, tr.MaxIdleConnsPerHost)
	require.NotZero(t, tr.IdleConnTimeout)
	require.NotZero(t, tr.TLSHandshakeTimeout)

	d, err := New()
	require.NoError(t, err)
	require.Equal(t, reflect.ValueOf(http.ProxyFromEnvironment).Pointer(), reflect.ValueOf(d.client.Transport.(*http.Transport).Proxy).Pointer())
	require.Equal(t, DefaultTimeout, d.client.Timeout)
	require.True(t, tr.Protocols.HTTP1())
	require.False(t, tr.Protocols.HTTP2(), "HTTP/1 only: the write deadline needs one request per connection")
	require.True(t, d.bindConns)

	own, err := New(WithHTTPClient(&http.Client{}))
	require.NoError(t, err)
	require.False(t, own.bindConns, "a client of unknown protocols cannot tell NotSent")
}

// TestWithProxy sends through a forward proxy: the request for the
// (unresolvable) platform host reaches the proxy, which answers for it.
func TestWithProxy(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	defer proxy.Close()
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)

	d := newTestDeliverer(t, WithProxy(http.ProxyURL(proxyURL)))
	res := d.Deliver(context.Background(), dingTalkRobot("http://oapi.dingtalk.invalid"), textEnv("m", "x"))
	require.Equal(t, Success, res.Outcome, "%+v", res)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"POST http://oapi.dingtalk.invalid/robot/send"}, seen)
}

const proxyChildEnv = "BOTRELAY_DELIVERY_PROXY_CHILD"

// TestHTTPSProxyFromEnvironment runs a child test process with HTTPS_PROXY
// set (the environment is read once per process) and checks that the
// child's HTTPS delivery tunnels through the proxy with CONNECT.
func TestHTTPSProxyFromEnvironment(t *testing.T) {
	if os.Getenv(proxyChildEnv) == "1" {
		d, err := New()
		if err != nil {
			fmt.Println("child: New:", err)
			os.Exit(2)
		}
		robot := Robot{Name: "p", Platform: PlatformDingTalk, Webhook: "https://oapi.dingtalk.invalid/robot/send?access_token=" + testToken, Secret: testSecret}
		res := d.Deliver(context.Background(), robot, textEnv("m", "x"))
		fmt.Printf("child result: %+v\n", res)
		return
	}

	connects := make(chan string, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				connects <- req.Method + " " + req.Host
				_, _ = io.WriteString(conn, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
			}()
		}
	}()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHTTPSProxyFromEnvironment$", "-test.count=1")
	cmd.Env = append(filteredEnv(), proxyChildEnv+"=1", "HTTPS_PROXY=http://"+ln.Addr().String(), "NO_PROXY=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	select { // the proxy reports before it answers, so before the child ends
	case got := <-connects:
		require.Equal(t, "CONNECT oapi.dingtalk.invalid:443", got)
	default:
		t.Fatalf("the proxy saw no request; child output:\n%s", out)
	}
	require.Contains(t, string(out), "child result: {Outcome:retryable")
	require.NotContains(t, string(out), testToken)
	require.NotContains(t, string(out), testSecret)
}

// filteredEnv is the environment without proxy variables.
func filteredEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "REQUEST_METHOD":
			continue
		}
		env = append(env, kv)
	}
	return env
}
