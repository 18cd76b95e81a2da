package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/console"
)

// TestCSRFGuard: mutating calls take JSON only and refuse cross-site
// browser requests; a script (no Origin, no Sec-Fetch-Site) passes.
func TestCSRFGuard(t *testing.T) {
	r := newRig(t)
	r.addRobot("ops", 20)
	r.seed()
	r.startConsole(nil)
	body := map[string]any{"seqs": []int{1}, "dry_run": true}
	tests := []struct {
		name   string
		header http.Header
		want   int
	}{
		{name: "script", want: http.StatusOK},
		{name: "same-origin browser", header: http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {r.http.URL}}, want: http.StatusOK},
		{name: "cross-site browser", header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, want: http.StatusForbidden},
		{name: "same-site other origin", header: http.Header{"Sec-Fetch-Site": {"same-site"}}, want: http.StatusForbidden},
		{name: "foreign origin without fetch metadata", header: http.Header{"Origin": {"https://evil.example"}}, want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, resp := r.call(http.MethodPost, "/api/v1/deadletters:replay", body, tt.header, nil)
			require.Equal(t, tt.want, code, resp)
		})
	}
	// A form post (what a cross-site page can send without a preflight).
	resp, err := http.Post(r.http.URL+"/api/v1/deadletters:replay", "application/x-www-form-urlencoded", strings.NewReader("seqs=1"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
}

func TestTokenAuth(t *testing.T) {
	const token = "op3rat0r-token"
	r := newRig(t)
	r.startConsole(func(c *console.Config) { c.Token = token })
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	code, _ := r.call(http.MethodGet, "/api/v1/robots", nil, nil, nil)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = r.call(http.MethodGet, "/api/v1/robots", nil, http.Header{"Authorization": {"Bearer nope"}}, nil)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = r.call(http.MethodGet, "/api/v1/robots", nil, http.Header{"Authorization": {"Bearer " + token}}, nil)
	require.Equal(t, http.StatusOK, code)

	resp, err := noRedirect.Get(r.http.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/login", resp.Header.Get("Location"))

	resp, err = noRedirect.PostForm(r.http.URL+"/login", url.Values{"token": {"wrong"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, err = noRedirect.PostForm(r.http.URL+"/login", url.Values{"token": {token}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "botrelay_console" {
			cookie = c
		}
	}
	require.NotNil(t, cookie)
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	req, _ := http.NewRequest(http.MethodGet, r.http.URL+"/", nil)
	req.AddCookie(cookie)
	resp, err = noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestProxyHeaderAuth(t *testing.T) {
	r := newRig(t)
	r.startConsole(func(c *console.Config) { c.ProxyHeader = "X-Auth-Request-User" })
	code, _ := r.call(http.MethodGet, "/api/v1/robots", nil, nil, nil)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = r.call(http.MethodGet, "/api/v1/robots", nil, http.Header{"X-Auth-Request-User": {"alice"}}, nil)
	require.Equal(t, http.StatusOK, code)
}
