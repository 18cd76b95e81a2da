package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=abc123def456", "https://oapi.dingtalk.com/robot/send"},
		{"dingtalk signed", "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1&sign=xyz%3D", "https://oapi.dingtalk.com/robot/send"},
		{"popo", "https://open.popo.netease.com/open-apis/robots/v1/hook/9f8e7d6c5b4a", "https://open.popo.netease.com/open-apis/robots/v1/hook/REDACTED"},
		{"popo all-letter id", "https://open.popo.netease.com/open-apis/robots/v1/hook/abcdef", "https://open.popo.netease.com/open-apis/robots/v1/hook/REDACTED"},
		{"feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/2c9a-77b1", "https://open.feishu.cn/open-apis/bot/v2/hook/REDACTED"},
		{"token-like segment", "http://127.0.0.1:8080/send/a1b2c3d4e5", "http://127.0.0.1:8080/send/REDACTED"},
		{"long segment", "http://h/averyveryverylongsegmentname", "http://h/REDACTED"},
		{"user info and fragment", "https://user:pw@h.example/robot/send?x=1#frag", "https://h.example/robot/send"},
		{"no path", "https://h.example?access_token=t", "https://h.example"},
		{"escaped segment", "http://h/hook/a%2Fb", "http://h/hook/REDACTED"},
		{"not a URL", "http://[::1", Redacted},
		{"no host", "robot/send?access_token=t", Redacted},
		{"empty", "", Redacted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Redact(tt.in))
		})
	}
}

func TestScrubber(t *testing.T) {
	robot := Robot{Webhook: "https://u:pass99@h/open-apis/robots/v1/hook/id%2Bplus?k=shortish&z=1", Secret: "s+e/c r"}
	sc := newScrubber(robot)
	for _, leak := range []string{"s+e/c r", "s%2Be%2Fc+r", "id%2Bplus", "id+plus", "shortish", "pass99", robot.Webhook} {
		require.Equal(t, "<"+Redacted+">", sc.string("<"+leak+">"), leak)
	}
	require.Equal(t, "z=1", sc.string("z=1"), "short query values are not taken for credentials")

	// A scrubbed error keeps errors.Is and Timeout, but hides the original.
	orig := fmt.Errorf("%w: %w: with s+e/c r", ErrRequest, context.DeadlineExceeded)
	err := sc.err(orig)
	require.NotContains(t, err.Error(), "s+e/c r")
	require.ErrorIs(t, err, ErrRequest)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout())
	require.Nil(t, errors.Unwrap(err))
	clean := errors.New("nothing secret")
	require.Same(t, clean, sc.err(clean))
	require.NoError(t, sc.err(nil))
}

// TestResultsNeverHoldSecrets drives every failure class, for both
// platforms, against servers that echo the request back in their errmsg,
// and checks that no token, hook id or secret survives in the Result.
func TestResultsNeverHoldSecrets(t *testing.T) {
	// echo answers with the given errcode and the full request URI and
	// body quoted in errmsg, the worst a platform could do.
	echo := func(status, dtCode, popoCode int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code := dtCode
			if strings.Contains(r.URL.Path, "/hook/") {
				code = popoCode
			}
			b := make([]byte, 4096)
			n, _ := r.Body.Read(b)
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"errcode":%d,"errmsg":%q}`, code, r.URL.String()+" "+string(b[:n])+" secret="+testSecret)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"status":1111,"wait":1,"msg":%q}`, r.URL.String())
	}))
	t.Cleanup(gateway.Close)
	proxyPage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<html>blocked %s</html>", r.URL.String())
	}))
	t.Cleanup(proxyPage.Close)
	blocking, arrived := blockingServer(t)

	refused := refusingURL(t)

	tests := []struct {
		name     string
		base     string
		want     Outcome
		keywords []string
		env      *envelope.Envelope
		timeout  time.Duration
		cancel   bool
	}{
		{name: "permanent errcode", base: echo(200, 310000, POPOErrSignature).URL, want: Permanent},
		{name: "unknown errcode", base: echo(200, 999999, 999999).URL, want: Permanent},
		{name: "throttled", base: echo(200, 130101, POPOErrThrottled).URL, want: Throttled},
		{name: "retryable errcode", base: echo(200, -1, 55).URL, want: Retryable},
		{name: "5xx", base: echo(502, -1, 55).URL, want: Retryable},
		{name: "4xx", base: echo(403, 300001, POPOErrRobotNotFound).URL, want: Permanent},
		{name: "gateway", base: gateway.URL, want: Wait},
		{name: "not JSON", base: proxyPage.URL, want: Retryable},
		{name: "refused", base: refused, want: Retryable},
		{name: "timeout", base: blocking.URL, want: Retryable, timeout: 20 * time.Millisecond},
		{name: "cancelled", base: blocking.URL, want: Retryable, cancel: true},
		{name: "missing keyword", base: refused, want: Permanent, keywords: []string{"absent"}},
		{name: "too long", base: refused, want: Permanent, env: textEnv("m", strings.Repeat("y", DingTalkMaxBody))},
	}
	for _, tt := range tests {
		for _, mk := range []func(string) Robot{dingTalkRobot, popoRobot} {
			robot := mk(tt.base)
			t.Run(tt.name+"/"+robot.Platform, func(t *testing.T) {
				if tt.name == "too long" && robot.Platform == PlatformPOPO {
					t.Skip("POPO has no known length limit")
				}
				robot.Keywords = tt.keywords
				opts := []Option{WithRules(PlatformPOPO, Rule{Codes: []int{55}, Outcome: Retryable})}
				if tt.timeout > 0 {
					opts = append(opts, WithTimeout(tt.timeout))
				}
				d := newTestDeliverer(t, opts...)
				env := tt.env
				if env == nil {
					env = textEnv("m", "x")
				}
				ctx := context.Background()
				if tt.cancel {
					c, cancel := context.WithCancel(ctx)
					go func() { <-arrived; cancel() }()
					ctx = c
				}
				res := d.Deliver(ctx, robot, env)
				require.Equal(t, tt.want, res.Outcome, "%+v", res)
				require.Error(t, res.Err)
				dump := fmt.Sprintf("%+v %v %s %s %s", res, res, res.Err, res.ErrMsg, res.Reason)
				for _, secret := range []string{testToken, testHookID, testSecret, url.QueryEscape(testSecret)} {
					require.NotContains(t, dump, secret)
				}
			})
		}
	}
}

// TestScrubberNeverLeavesASecret: a replacement that forms the secret
// anew never leaves it in the text.
func TestScrubberNeverLeavesASecret(t *testing.T) {
	tests := []struct {
		name, secret, text, want string
	}{
		{"plain", "s3cr3t-value", "sign s3cr3t-value bad", "sign REDACTED bad"},
		{"formed anew", "DR", "DDRR", ""},
		{"formed anew, longer", "TEDX", "TETEDXDX", ""},
		{"inside REDACTED", "ACT", "xACTx", ""},
		{"none", "s3cr3t-value", "nothing here", "nothing here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newScrubber(Robot{Webhook: "https://oapi.dingtalk.com/robot/send", Secret: tt.secret})
			got := sc.string(tt.text)
			require.NotContains(t, got, tt.secret)
			if tt.want != "" {
				require.Equal(t, tt.want, got)
			}
		})
	}
}
