package tlsconf

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/tlsconf/tlstest"
)

// logRecord keeps what was logged, for the tests that check it.
type logRecord struct {
	mu sync.Mutex
	b  strings.Builder
}

func (r *logRecord) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Write(p)
}

func (r *logRecord) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String()
}

// serve accepts TLS connections on a loopback port with conf, answers "ok" on each after the
// handshake, and returns the address.
func serve(t *testing.T, conf *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				_, _ = io.WriteString(c, "ok")
			}()
		}
	}()
	return l.Addr().String()
}

// dial connects with client and returns the serial of the server's certificate once the server
// answered (with TLS 1.3 a refused client certificate shows only on the first read).
func dial(addr string, client *tls.Config) (*big.Int, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, client)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	if string(b) != "ok" {
		return nil, errors.New("server answered " + string(b))
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func newReloader(t *testing.T, files Files) (*Reloader, *logRecord) {
	t.Helper()
	rec := &logRecord{}
	r, err := New(files, 10*time.Millisecond, slog.New(slog.NewTextHandler(rec, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r, rec
}

// waitSerial dials until the server presents want, as a new connection does once the files were
// read again.
func waitSerial(t *testing.T, addr string, client *tls.Config, want *big.Int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := dial(addr, client)
		if err == nil && got.Cmp(want) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server presents %v (%v), want serial %v", got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A renewed pair is served to new connections without a restart; a bad replacement is logged
// once and the pair in force keeps serving; a good one after it is taken.
func TestReloadsTheServerCertificate(t *testing.T) {
	f := tlstest.Write(t)
	r, rec := newReloader(t, Files{Cert: f.Cert, Key: f.Key})
	addr := serve(t, r.Config())
	client := f.ClientConfig(t, false)
	if got, err := dial(addr, client); err != nil || got.Cmp(f.Server.Cert.SerialNumber) != 0 {
		t.Fatalf("first connection: serial %v, %v; want %v", got, err, f.Server.Cert.SerialNumber)
	}

	renewed := f.CA.Server(t)
	f.Install(t, renewed)
	waitSerial(t, addr, client, renewed.Cert.SerialNumber)
	if !strings.Contains(rec.String(), "tls files reloaded") || !strings.Contains(rec.String(), renewed.Cert.SerialNumber.Text(16)) {
		t.Errorf("log lacks the reload with the new serial:\n%s", rec.String())
	}

	// A certificate with a key that is not its own.
	other := f.CA.Server(t)
	tlstest.WriteFile(t, f.Cert, other.CertPEM)
	time.Sleep(50 * time.Millisecond) // several checks
	for range 5 {
		if got, err := dial(addr, client); err != nil || got.Cmp(renewed.Cert.SerialNumber) != 0 {
			t.Fatalf("after a bad replacement: serial %v, %v; want the one in force %v", got, err, renewed.Cert.SerialNumber)
		}
		time.Sleep(15 * time.Millisecond)
	}
	if n := strings.Count(rec.String(), "tls files invalid"); n != 1 {
		t.Errorf("bad replacement logged %d times, want once:\n%s", n, rec.String())
	}
	if !strings.Contains(rec.String(), "private key does not match public key") {
		t.Errorf("log does not say why:\n%s", rec.String())
	}

	tlstest.WriteFile(t, f.Key, other.KeyPEM)
	waitSerial(t, addr, client, other.Cert.SerialNumber)

	// A file gone (mid-rotation) keeps what is in force too.
	if err := os.Remove(f.Key); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if got, err := dial(addr, client); err != nil || got.Cmp(other.Cert.SerialNumber) != 0 {
		t.Fatalf("with the key file gone: serial %v, %v; want %v", got, err, other.Cert.SerialNumber)
	}
	if !strings.Contains(rec.String(), "tls file unreadable") {
		t.Errorf("log lacks the unreadable file:\n%s", rec.String())
	}
	if strings.Contains(rec.String(), "PRIVATE KEY") {
		t.Errorf("log shows key material:\n%s", rec.String())
	}
}

// With a client CA, a client must present a certificate it signed; the CA file reloads too.
func TestClientCertificates(t *testing.T) {
	f := tlstest.Write(t)
	r, _ := newReloader(t, Files{Cert: f.Cert, Key: f.Key, ClientCA: f.ClientCA})
	if !r.Mutual() {
		t.Fatal("Mutual() = false with a client CA")
	}
	addr := serve(t, r.Config())
	otherCA := tlstest.NewCA(t, "other CA")
	foreign := tlstest.Presenting(t, f.ClientConfig(t, false), otherCA.Client(t, "stranger"))

	tests := []struct {
		name    string
		give    *tls.Config
		wantErr string
	}{
		{name: "signed by the CA", give: f.ClientConfig(t, true)},
		{name: "no certificate", give: f.ClientConfig(t, false), wantErr: "certificate required"},
		{name: "another CA", give: foreign, wantErr: "unknown certificate authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dial(addr, tt.give)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("dial: %v, want accepted", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("dial = %v, want refused with %q", err, tt.wantErr)
			}
		})
	}

	// The other CA replaces the first: its clients get in, the first CA's no longer do.
	tlstest.WriteFile(t, f.ClientCA, otherCA.PEM)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := dial(addr, foreign); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replaced client CA was not taken")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := dial(addr, f.ClientConfig(t, true)); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Errorf("client of the replaced CA: %v, want refused", err)
	}
}

// TLS below 1.2 is refused.
func TestMinVersion(t *testing.T) {
	f := tlstest.Write(t)
	r, _ := newReloader(t, Files{Cert: f.Cert, Key: f.Key})
	addr := serve(t, r.Config())
	old := f.ClientConfig(t, false)
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := dial(addr, old); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 client: %v, want refused for its protocol version", err)
	}
}

// ALPN offers what the server asked for on every connection, also after a reload.
func TestNextProtos(t *testing.T) {
	f := tlstest.Write(t)
	r, _ := newReloader(t, Files{Cert: f.Cert, Key: f.Key})
	addr := serve(t, r.Config("h2", "http/1.1"))
	client := f.ClientConfig(t, false)
	client.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("negotiated %q, want h2", p)
	}
}

// A file that cannot serve fails New with an error naming its role and path, without key
// material.
func TestNewRefusesBadFiles(t *testing.T) {
	f := tlstest.Write(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	tlstest.WriteFile(t, garbage, []byte("not a certificate\n"))
	otherKey := filepath.Join(dir, "other.key")
	tlstest.WriteFile(t, otherKey, f.CA.Server(t).KeyPEM)
	huge := filepath.Join(dir, "huge.pem")
	tlstest.WriteFile(t, huge, make([]byte, maxFileBytes+1))

	tests := []struct {
		name     string
		give     Files
		wantRole Role
		wantErr  string
	}{
		{name: "cert missing", give: Files{Cert: missing, Key: f.Key}, wantRole: RoleCert,
			wantErr: "certificate file " + missing + ": no such file or directory"},
		{name: "key missing", give: Files{Cert: f.Cert, Key: missing}, wantRole: RoleKey,
			wantErr: "key file " + missing + ": no such file or directory"},
		{name: "cert not PEM", give: Files{Cert: garbage, Key: f.Key}, wantRole: RoleCert,
			wantErr: "certificate file " + garbage + ": no PEM CERTIFICATE block in it"},
		{name: "key not PEM", give: Files{Cert: f.Cert, Key: garbage}, wantRole: RoleKey,
			wantErr: "key file " + garbage + ": with certificate " + f.Cert + ": tls: failed to find any PEM data in key input"},
		{name: "key of another certificate", give: Files{Cert: f.Cert, Key: otherKey}, wantRole: RoleKey,
			wantErr: "key file " + otherKey + ": with certificate " + f.Cert + ": tls: private key does not match public key"},
		{name: "client CA missing", give: Files{Cert: f.Cert, Key: f.Key, ClientCA: missing}, wantRole: RoleClientCA,
			wantErr: "client CA file " + missing + ": no such file or directory"},
		{name: "client CA not PEM", give: Files{Cert: f.Cert, Key: f.Key, ClientCA: garbage}, wantRole: RoleClientCA,
			wantErr: "client CA file " + garbage + ": no PEM CA certificate in it"},
		{name: "cert too large", give: Files{Cert: huge, Key: f.Key}, wantRole: RoleCert,
			wantErr: "certificate file " + huge + ": larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.give, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
			var fe *FileError
			if !errors.As(err, &fe) || fe.Role != tt.wantRole || err.Error() != tt.wantErr {
				t.Fatalf("New = %v, want a %s FileError %q", err, tt.wantRole, tt.wantErr)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error shows key material: %v", err)
			}
		})
	}
}
