package robotsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// delayListener hands out connections at once, each of which ignores its
// reader until delay has passed since it was accepted (see
// [WithAcceptDelay]). Delaying each connection's first read rather than
// Accept itself needs no goroutine and delays every connection by d from
// its own arrival, not in a queue.
type delayListener struct {
	net.Listener
	delay *atomic.Int64 // nanoseconds
}

func (l *delayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	d := time.Duration(l.delay.Load())
	if d <= 0 {
		return c, nil
	}
	return &delayConn{Conn: c, readyAt: time.Now().Add(d), closed: make(chan struct{})}, nil
}

// delayConn blocks its first Read until readyAt, or until it is closed.
type delayConn struct {
	net.Conn
	readyAt   time.Time
	ready     atomic.Bool
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *delayConn) Read(b []byte) (int, error) {
	if !c.ready.Load() {
		t := time.NewTimer(time.Until(c.readyAt))
		select {
		case <-t.C:
		case <-c.closed:
			t.Stop()
			return 0, net.ErrClosed
		}
		c.ready.Store(true)
	}
	return c.Conn.Read(b)
}

func (c *delayConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// selfSigned makes a certificate for 127.0.0.1 and localhost valid for a
// day, and returns it with its parsed leaf.
func selfSigned() (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"botrelay robotsim"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}
