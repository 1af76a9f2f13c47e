package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/ticketpulse/ticketpulse/services/platform/natsembed"
	"github.com/ticketpulse/ticketpulse/services/platform/tlsconf/tlstest"
)

// Certs are PEM files of a throwaway CA, a server certificate it signed for 127.0.0.1 and
// localhost, and a client certificate it signed (for mutual TLS).
type Certs struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	pool                  *x509.CertPool
}

// NewCerts writes a fresh CA and certificates into a temporary directory of t.
func NewCerts(t testing.TB) Certs {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ticketpulse test CA")
	c := Certs{CA: filepath.Join(dir, "ca.pem"), pool: ca.Pool()}
	tlstest.WriteFile(t, c.CA, ca.PEM)
	write := func(name string, p *tlstest.Pair) (certFile, keyFile string) {
		certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		tlstest.WriteFile(t, certFile, p.CertPEM)
		tlstest.WriteFile(t, keyFile, p.KeyPEM)
		return certFile, keyFile
	}
	c.ServerCert, c.ServerKey = write("server", ca.Server(t))
	c.ClientCert, c.ClientKey = write("client", ca.Client(t, "client"))
	return c
}

// ServerTLS is a server configuration presenting the server certificate and, with mutual,
// requiring a client certificate signed by the CA.
func (c Certs) ServerTLS(t testing.TB, mutual bool) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(c.ServerCert, c.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if mutual {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = c.pool
	}
	return tc
}

// NATSWith starts an embedded JetStream server for one test with configure applied to its
// options (users, permissions, TLS), and returns it with its client URL (nats://, no user).
func NATSWith(t testing.TB, configure func(*server.Options)) (*server.Server, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real NATS server; skipped in -short mode")
	}
	s, err := natsembed.Start(natsembed.Options{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Sync: "1m", Name: "test", Configure: configure})
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s, "nats://" + s.Addr().String()
}

// NATSFromOptions runs a server with opts as they are (e.g. read by server.ProcessConfigFile),
// but always on a random loopback port, with its store in a temporary directory of t, no
// monitoring port and no signal handlers; it returns the server and its client URL.
func NATSFromOptions(t testing.TB, opts *server.Options) (*server.Server, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real NATS server; skipped in -short mode")
	}
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.HTTPHost, opts.HTTPPort, opts.HTTPSPort = "", 0, 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	opts.SyncAlways, opts.SyncInterval = false, time.Minute
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats not ready after 10s")
	}
	t.Cleanup(s.Shutdown)
	return s, "nats://" + s.Addr().String()
}

// NKeyUser makes a user NKey and writes its seed to a file of t; the server lists the public
// key (server.Options.Nkeys), the client reads the seed file.
func NKeyUser(t testing.TB) (public, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	public, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return public, seedFile
}

// NATSOperator starts an embedded server in operator (JWT) mode for one test: it trusts a
// fresh operator, which signed one account with JetStream enabled. It returns the client URL
// and a function writing a .creds file for a new user of that account.
func NATSOperator(t testing.TB) (url string, newCreds func() string) {
	t.Helper()
	okp := mustKey(t, nkeys.CreateOperator)
	akp := mustKey(t, nkeys.CreateAccount)
	oc := jwt.NewOperatorClaims(publicKey(t, okp))
	sysKP := mustKey(t, nkeys.CreateAccount)
	oc.SystemAccount = publicKey(t, sysKP)
	if _, err := oc.Encode(okp); err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	for _, kp := range []nkeys.KeyPair{akp, sysKP} {
		ac := jwt.NewAccountClaims(publicKey(t, kp))
		if kp == akp {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		ajwt, err := ac.Encode(okp)
		if err != nil {
			t.Fatal(err)
		}
		if err := resolver.Store(ac.Subject, ajwt); err != nil {
			t.Fatal(err)
		}
	}
	_, url = NATSWith(t, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{oc}
		o.AccountResolver = resolver
		o.SystemAccount = oc.SystemAccount
	})
	n := 0
	return url, func() string {
		ukp := mustKey(t, nkeys.CreateUser)
		uc := jwt.NewUserClaims(publicKey(t, ukp))
		ujwt, err := uc.Encode(akp)
		if err != nil {
			t.Fatal(err)
		}
		seed, err := ukp.Seed()
		if err != nil {
			t.Fatal(err)
		}
		creds, err := jwt.FormatUserConfig(ujwt, seed)
		if err != nil {
			t.Fatal(err)
		}
		n++
		path := filepath.Join(t.TempDir(), "user"+strconv.Itoa(n)+".creds")
		if err := os.WriteFile(path, creds, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

func mustKey(t testing.TB, create func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func publicKey(t testing.TB, kp nkeys.KeyPair) string {
	t.Helper()
	p, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartRedisTLS runs redis-server like StartRedis but listening for TLS only, with the server
// certificate of certs; with mutual it requires client certificates signed by certs' CA. Its
// Addr is the TLS port.
func StartRedisTLS(dir string, certs Certs, mutual bool, extra ...string) (*RedisServer, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	auth := "no"
	if mutual {
		auth = "yes"
	}
	s := &RedisServer{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir,
		tls: &tls.Config{RootCAs: certs.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	if mutual {
		cert, err := tls.LoadX509KeyPair(certs.ClientCert, certs.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		s.tls.Certificates = []tls.Certificate{cert}
	}
	s.args = append([]string{"--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--tls-cert-file", certs.ServerCert, "--tls-key-file", certs.ServerKey, "--tls-ca-cert-file", certs.CA,
		"--tls-auth-clients", auth,
		"--save", "", "--appendonly", "no", "--protected-mode", "yes",
		"--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log")}, extra...)
	return s, s.Start()
}
