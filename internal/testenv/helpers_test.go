package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = fmt.Fprintf(&b, "%d\n", i)
				_ = b.String() // reads race with writes unless guarded
			}
		})
	}
	wg.Wait()
	require.Len(t, strings.Split(strings.TrimSpace(b.String()), "\n"), 800)
}

func TestLookupMap(t *testing.T) {
	tests := []struct {
		name   string
		m      map[string]string
		key    string
		want   string
		wantOK bool
	}{
		{name: "nil map", key: "A"},
		{name: "set", m: map[string]string{"A": "1"}, key: "A", want: "1", wantOK: true},
		{name: "set empty", m: map[string]string{"A": ""}, key: "A", want: "", wantOK: true},
		{name: "unset", m: map[string]string{"A": "1"}, key: "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := LookupMap(tt.m)(tt.key)
			require.Equal(t, tt.want, v)
			require.Equal(t, tt.wantOK, ok)
		})
	}
}

func TestWriteFile(t *testing.T) {
	path := WriteFile(t, "robots.yaml", "robots: []\n")
	require.Equal(t, "robots.yaml", filepath.Base(path))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "robots: []\n", string(data))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "test configs may hold secrets")
}

func TestClosedAddr(t *testing.T) {
	addr := ClosedAddr(t)
	_, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.Error(t, err, "nothing listens on %s", addr)
}
