package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
)

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func sha(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

func TestRunTokensFile(t *testing.T) {
	url := testenv.NATSURL(t)
	_, js := testenv.Connect(t, url)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	file := testenv.WriteFile(t, "tokens.yaml", `tokens:
  - name: team-a
    sha256: "`+sha(token1)+`"
    robots: ["team-a-*", "ops-alerts"]
    rate: 0.01
    burst: 2
  - name: team-b
    token_env: TEAM_B_TOKEN
    robots: ["team-b-*"]
`)
	metricsAddr := freeAddr(t)
	p := startRun(t, []string{"--listen", "127.0.0.1:0", "--prefix", topo.Prefix, "--tokens-file", file, "--redis", testenv.RedisAddr(),
		"--log-format", "json", "--metrics-addr", metricsAddr}, map[string]string{cli.EnvNATSURL: url, "TEAM_B_TOKEN": token2})

	status, body := p.request(t, http.MethodPost, "/v1/messages", `{"robot":"team-a-db","text":"hi"}`, token1)
	require.Equal(t, http.StatusAccepted, status, body)
	status, body = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"team-a-db","text":"hi"}`, token2)
	require.Equal(t, http.StatusForbidden, status, body)
	require.JSONEq(t, `{"error":"robot outside the token's scope","problems":["robot: robot \"team-a-db\" is outside the scope of token team-b"]}`, body)
	status, _ = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"ops-alerts","text":"hi"}`, token1)
	require.Equal(t, http.StatusAccepted, status)
	status, body = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"ops-alerts","text":"hi"}`, token1)
	require.Equal(t, http.StatusTooManyRequests, status, "burst 2 spent: %s", body)

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Contains(t, string(metrics), `botrelay_gateway_requests_total{endpoint="/v1/messages",status="403",token="team-b"} 1`)
	require.Contains(t, string(metrics), `botrelay_gateway_messages_stored_total{token="team-a"} 2`)
	require.NotContains(t, string(metrics), "S3cret")

	// Reloaded on SIGHUP: team-b may now address every robot.
	require.NoError(t, os.WriteFile(file, []byte(`tokens:
  - name: team-b
    token_env: TEAM_B_TOKEN
`), 0o600))
	p.hup <- syscall.SIGHUP
	testenv.Eventually(t, 5*time.Second, func() bool { return strings.Contains(p.stderr.String(), "tokens file reloaded") }, "no reload")
	status, body = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"team-a-db","text":"hi"}`, token2)
	require.Equal(t, http.StatusAccepted, status, body)
	status, _ = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"team-a-db","text":"hi"}`, token1)
	require.Equal(t, http.StatusUnauthorized, status, "team-a was removed")

	// A broken file is not loaded: the tokens in use stay.
	require.NoError(t, os.WriteFile(file, []byte("tokens:\n  - name: team-c\n    sha256: \"S3cretNotHex\"\n"), 0o600))
	p.hup <- syscall.SIGHUP
	testenv.Eventually(t, 5*time.Second, func() bool { return strings.Contains(p.stderr.String(), "tokens file not reloaded") }, "no failed reload")
	status, _ = p.request(t, http.MethodPost, "/v1/messages", `{"robot":"team-a-db","text":"hi"}`, token2)
	require.Equal(t, http.StatusAccepted, status)

	require.NoError(t, p.stop(t))
	logs := p.stderr.String()
	require.Contains(t, logs, `"token":"team-a"`)
	require.Contains(t, logs, `"token":"team-b"`)
	require.Contains(t, logs, "tokens[0] \\\"team-c\\\": sha256: must be 64 hex digits")
	require.NotContains(t, logs, "S3cret")
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "botrelay test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestRunTLS(t *testing.T) {
	url := testenv.NATSURL(t)
	_, js := testenv.Connect(t, url)
	topo := testenv.Topology(t, js)
	require.NoError(t, topo.Ensure(context.Background(), js))
	certFile, keyFile, pool := selfSigned(t)
	p := startRun(t, []string{"--listen", "127.0.0.1:0", "--prefix", topo.Prefix, "--token-env", "GW_TOKENS",
		"--tls-cert", certFile, "--tls-key", keyFile}, map[string]string{cli.EnvNATSURL: url, "GW_TOKENS": token1})
	base := strings.Replace(p.base, "http://", "https://", 1)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(`{"robot":"ops","text":"over TLS"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token1)
	resp, err := client.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.NotNil(t, resp.TLS, "served over TLS")

	status, _ := p.request(t, http.MethodGet, "/healthz", "", "") // plain HTTP to a TLS port
	require.Equal(t, http.StatusBadRequest, status)
	require.NoError(t, p.stop(t))
}
