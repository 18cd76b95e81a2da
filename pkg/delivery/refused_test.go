package delivery

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// refusingURL returns the address of a TCP port that refuses every
// connection for the whole test: a socket bound to it but never listening.
// Closing a listener to free a port is not enough: another test process may
// be given the same ephemeral port and answer (or reset) in its place.
func refusingURL(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	in4, ok := sa.(*syscall.SockaddrInet4)
	require.True(t, ok, "bound address %T", sa)
	return fmt.Sprintf("http://127.0.0.1:%d", in4.Port)
}
