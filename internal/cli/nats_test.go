package cli

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "nats://127.0.0.1:4222", want: "nats://127.0.0.1:4222"},
		{in: "nats://user:pa@ss@nats:4222", want: "nats://REDACTED@nats:4222"},
		{in: "nats://u:p4ss@h:4222, nats://g:4222", want: "nats://REDACTED@h:4222,nats://g:4222"},
		{in: "nats://a:1, tls://tok@b:2", want: "nats://a:1,tls://REDACTED@b:2"},
		{in: "tok@host:1", want: "REDACTED@host:1"},
		{in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := RedactURL(tt.in)
			require.Equal(t, tt.want, got)
			for _, secret := range []string{"p4ss", "pa@ss", "tok@"} {
				require.NotContains(t, got, secret)
			}
		})
	}
}

// TestLogNATSEvents restarts a real server under a connection made with
// LogNATSEvents: the disconnection and the reconnection are logged, the
// password is not.
func TestLogNATSEvents(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, Username: "bot", Password: "natsS3cret", NoLog: true, NoSigs: true}
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	port := s.Addr().(*net.TCPAddr).Port

	var logs testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	nc, err := nats.Connect("nats://bot:natsS3cret@127.0.0.1:"+strconv.Itoa(port), append(LogNATSEvents(log),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0))...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	s.Shutdown()
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "NATS disconnected; reconnecting") },
		"no disconnection logged: %s", logs.String())

	opts2 := *opts
	opts2.Port = port
	s2, err := server.NewServer(&opts2)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(s2.Start)
	t.Cleanup(func() { s2.Shutdown(); wg.Wait() })
	require.True(t, s2.ReadyForConnections(10*time.Second))
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "NATS reconnected") },
		"no reconnection logged: %s", logs.String())
	require.Contains(t, logs.String(), "server=nats://REDACTED@127.0.0.1:"+strconv.Itoa(port))
	require.NotContains(t, logs.String(), "natsS3cret")
}
