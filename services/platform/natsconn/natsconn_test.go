package natsconn

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestUserPassword(t *testing.T) {
	s, url := testenv.NATSWith(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "ingest", Password: "s3cret-pw"}}
	})
	host := strings.TrimPrefix(url, "nats://")
	nc, err := Connect("nats://ingest:s3cret-pw@"+host, "ingest", Auth{}, quiet)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	nc.Close()

	_, err = Connect("nats://ingest:wrong-pw@"+host, "ingest", Auth{}, quiet)
	want := "connect nats nats://ingest:xxxxx@" + s.Addr().String() + ": nats: Authorization Violation"
	if err == nil || err.Error() != want {
		t.Fatalf("wrong password: %v, want %q", err, want)
	}
	if _, err := Connect(url, "ingest", Auth{}, quiet); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("no credentials: %v, want an Authorization Violation", err)
	}
}

func TestNKey(t *testing.T) {
	pub, seedFile := testenv.NKeyUser(t)
	_, url := testenv.NATSWith(t, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	})
	nc, err := Connect(url, "kpi", Auth{NKey: seedFile}, quiet)
	if err != nil {
		t.Fatalf("nkey: %v", err)
	}
	nc.Close()
	_, otherSeed := testenv.NKeyUser(t)
	if _, err := Connect(url, "kpi", Auth{NKey: otherSeed}, quiet); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("unknown nkey: %v, want an Authorization Violation", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.nk")
	if err := os.WriteFile(bad, []byte("not a seed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(url, "kpi", Auth{NKey: bad}, quiet); err == nil || !strings.Contains(err.Error(), "nkey seed "+bad) {
		t.Fatalf("file without a seed: %v, want it named", err)
	}
}

func TestCreds(t *testing.T) {
	url, newCreds := testenv.NATSOperator(t)
	nc, err := Connect(url, "escalation", Auth{Creds: newCreds()}, quiet)
	if err != nil {
		t.Fatalf("creds: %v", err)
	}
	defer nc.Close()
	// The account has JetStream: the services can work with such a user.
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("jetstream as a creds user: %v", err)
	}
	if _, err := Connect(url, "escalation", Auth{}, quiet); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("no creds: %v, want an Authorization Violation", err)
	}
}

func TestTLSClientCertificate(t *testing.T) {
	certs := testenv.NewCerts(t)
	_, url := testenv.NATSWith(t, func(o *server.Options) {
		o.TLSConfig = certs.ServerTLS(t, true)
		o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 2
	})
	nc, err := Connect(url, "notify", Auth{TLSCA: certs.CA, TLSCert: certs.ClientCert, TLSKey: certs.ClientKey}, quiet)
	if err != nil {
		t.Fatalf("mtls: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("connection is not TLS")
	}
	nc.Close()
	if _, err := Connect(url, "notify", Auth{TLSCA: certs.CA}, quiet); err == nil {
		t.Fatal("connected without the client certificate the server requires")
	}
	if _, err := Connect(url, "notify", Auth{}, quiet); err == nil {
		t.Fatal("connected without trusting the server's CA")
	}
}

// A CA alone turns TLS on and checks the server against it, with a nats:// or a tls:// URL.
func TestTLSServerOnly(t *testing.T) {
	certs := testenv.NewCerts(t)
	s, url := testenv.NATSWith(t, func(o *server.Options) {
		o.TLSConfig = certs.ServerTLS(t, false)
		o.TLS, o.TLSTimeout = true, 2
	})
	for _, u := range []string{url, "tls://" + s.Addr().String()} {
		nc, err := Connect(u, "kpi", Auth{TLSCA: certs.CA}, quiet)
		if err != nil {
			t.Fatalf("%s with the CA: %v", u, err)
		}
		if !nc.TLSRequired() {
			t.Errorf("%s: connection is not TLS", u)
		}
		nc.Close()
	}
	if _, err := Connect("tls://"+s.Addr().String(), "kpi", Auth{}, quiet); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("without the CA: %v, want the server's certificate refused", err)
	}
}

func TestAuthCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		give Auth
		want []string
	}{
		{name: "nothing", give: Auth{}},
		{name: "all files readable", give: Auth{Creds: file, TLSCA: file, TLSCert: file, TLSKey: file}},
		{name: "creds and nkey", give: Auth{Creds: file, NKey: file}, want: []string{"-nats-creds and -nats-nkey: give one of them, not both"}},
		{name: "cert without key", give: Auth{TLSCert: file}, want: []string{"-nats-tls-cert and -nats-tls-key: give both or neither"}},
		{name: "key without cert", give: Auth{TLSKey: file}, want: []string{"-nats-tls-cert and -nats-tls-key: give both or neither"}},
		{name: "unreadable", give: Auth{Creds: missing, TLSCA: missing}, want: []string{
			"-nats-creds: " + missing + ": no such file or directory",
			"-nats-tls-ca: " + missing + ": no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, err := range tt.give.Check("nats-") {
				got = append(got, err.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Check = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInboxPrefix(t *testing.T) {
	_, url := testenv.NATSWith(t, nil)
	nc, err := Connect(url, "kpi", Auth{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.NewInbox(); !strings.HasPrefix(got, "_INBOX.kpi.") {
		t.Errorf("inbox %q, want it under _INBOX.kpi.", got)
	}
}
