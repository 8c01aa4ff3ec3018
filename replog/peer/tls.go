package peer

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// LoadTLS builds the mutual-TLS configuration of the peer transport from PEM
// files: ca holds the certificate authorities that sign every master's
// certificate (and nothing else should be trusted), cert and key this
// master's certificate chain and key. The same configuration serves the
// listener, which requires and verifies a client certificate, and the
// dialers, which verify the listener's certificate against the host they
// dial, so each certificate must name its master's peer host (an IP or DNS
// SAN) and allow both server and client authentication. TLS 1.3 only.
func LoadTLS(ca, cert, key string) (*tls.Config, error) {
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("load peer tls: read ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load peer tls: no certificate in ca file %s", ca)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("load peer tls: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}
