// Package tlstest makes certificates for tests: a CA, server certificates for 127.0.0.1 and
// client certificates it signs, as PEM files a service reads with its -tls-* settings and as the
// client configurations that reach it.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority that exists for one test.
type CA struct {
	Cert *x509.Certificate
	PEM  []byte
	key  *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}
}

// Pool is a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Pair is a certificate the CA signed and its key.
type Pair struct {
	Cert            *x509.Certificate
	CertPEM, KeyPEM []byte
}

// Server signs a server certificate for 127.0.0.1 and localhost, with a new random serial.
func (ca *CA) Server(t testing.TB) *Pair {
	t.Helper()
	return ca.sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client signs a client certificate for name.
func (ca *CA) Client(t testing.TB, name string) *Pair {
	t.Helper()
	return ca.sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) sign(t testing.TB, tmpl *x509.Certificate) *Pair {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("sign certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Pair{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}

// TLS is the pair as a client presents it.
func (p *Pair) TLS(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Files are a server's TLS files written by Write, with the CA and client certificate that go
// with them.
type Files struct {
	CA             *CA
	Server, Client *Pair
	// Cert, Key and ClientCA are the paths for -tls-cert, -tls-key and -tls-client-ca.
	Cert, Key, ClientCA string
}

// Write makes a CA, a server certificate and a client certificate it signed, and writes the
// server's certificate, key and the CA into a temporary directory removed when the test ends.
func Write(t testing.TB) *Files {
	t.Helper()
	ca := NewCA(t, "test CA")
	dir := t.TempDir()
	f := &Files{CA: ca, Server: ca.Server(t), Client: ca.Client(t, "test client"),
		Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key"), ClientCA: filepath.Join(dir, "ca.crt")}
	WriteFile(t, f.ClientCA, ca.PEM)
	f.Install(t, f.Server)
	return f
}

// Install replaces the server's certificate and key files with p's, each by rename, as a
// certificate manager renews them.
func (f *Files) Install(t testing.TB, p *Pair) {
	t.Helper()
	WriteFile(t, f.Cert, p.CertPEM)
	WriteFile(t, f.Key, p.KeyPEM)
}

// ClientConfig trusts the CA and, when mutual, presents the client certificate.
func (f *Files) ClientConfig(t testing.TB, mutual bool) *tls.Config {
	t.Helper()
	c := &tls.Config{RootCAs: f.CA.Pool(), MinVersion: tls.VersionTLS12}
	if mutual {
		c = Presenting(t, c, f.Client)
	}
	return c
}

// Presenting is c presenting p whatever CAs the server names as acceptable (a Go client would
// otherwise send no certificate to a server that does not name p's CA), so a test sees the
// server verify it.
func Presenting(t testing.TB, c *tls.Config, p *Pair) *tls.Config {
	t.Helper()
	cert := p.TLS(t)
	c = c.Clone()
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return c
}

// WriteFile writes data to path by rename, so a reader sees the old content or the new, whole.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
