package service

import (
	"context"
	"crypto/tls"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/tlsconf"
	"github.com/ticketpulse/ticketpulse/services/platform/tlsconf/tlstest"
)

// startTLS starts the test service serving TLS on new certificates; mutual also requires client
// certificates.
func startTLS(t *testing.T, mutual bool) (*Service, *tlstest.Files) {
	t.Helper()
	_, natsURL := testenv.NATS(t)
	cfg := testConfig(natsURL, testenv.RedisSingle(t).Options().Addr)
	f := tlstest.Write(t)
	cfg.TLSCert, cfg.TLSKey = f.Cert, f.Key
	if mutual {
		cfg.TLSClientCA = f.ClientCA
	}
	a, _ := start(t, cfg)
	return a, f
}

// httpsGet fetches url on a new connection with client and returns the status, the body and the
// serial of the server's certificate.
func httpsGet(url string, client *tls.Config) (int, string, *big.Int, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: client, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.TLS.PeerCertificates[0].SerialNumber, nil
}

// grpcHealth checks the health service at addr on a new connection with creds.
func grpcHealth(t *testing.T, addr string, creds credentials.TransportCredentials) (*tls.ConnectionState, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
	if err != nil {
		return nil, err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, want SERVING", resp.GetStatus())
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, nil
	}
	return &info.State, nil
}

// With TLS settings, the HTTP, admin and gRPC servers speak TLS only: the probes, metrics and
// health answer over TLS, a plain client is refused.
func TestTLSOnEveryServer(t *testing.T) {
	a, f := startTLS(t, false)
	client := f.ClientConfig(t, false)
	ad := a.Addrs()

	tests := []struct {
		name     string
		give     string
		wantCode int
		wantBody string
	}{
		{name: "readyz", give: "https://" + ad.HTTP + "/readyz", wantCode: http.StatusOK, wantBody: `"status":"ready"`},
		{name: "healthz", give: "https://" + ad.HTTP + "/healthz", wantCode: http.StatusOK, wantBody: `"status":"ok"`},
		{name: "no metrics on the service's address", give: "https://" + ad.HTTP + "/metrics", wantCode: http.StatusNotFound, wantBody: "404"},
		{name: "admin metrics", give: "https://" + ad.Admin + "/metrics", wantCode: http.StatusOK, wantBody: "go_goroutines"},
		{name: "admin readyz", give: "https://" + ad.Admin + "/readyz", wantCode: http.StatusOK, wantBody: `"status":"ready"`},
		{name: "admin pprof", give: "https://" + ad.Admin + "/debug/pprof/", wantCode: http.StatusOK, wantBody: "goroutine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, serial, err := httpsGet(tt.give, client)
			if err != nil || code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("GET %s = %d %.100q, %v; want %d with %q", tt.give, code, body, err, tt.wantCode, tt.wantBody)
			}
			if serial.Cmp(f.Server.Cert.SerialNumber) != 0 {
				t.Errorf("served serial %v, want %v", serial, f.Server.Cert.SerialNumber)
			}
		})
	}

	// HTTP/2 is offered on TLS, as Go's own TLS servers do.
	h2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: client, ForceAttemptHTTP2: true}}
	for _, addr := range []string{ad.HTTP, ad.Admin} {
		resp, err := h2.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/2.0" {
			t.Errorf("HTTP/2 client to %s: %d over %s, want 200 over HTTP/2.0", addr, resp.StatusCode, resp.Proto)
		}
	}

	// Plain HTTP to a TLS port is answered 400 by the TLS server, never served.
	for _, addr := range []string{ad.HTTP, ad.Admin} {
		if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusBadRequest || !strings.Contains(body, "Client sent an HTTP request to an HTTPS server") {
			t.Errorf("plain HTTP to %s = %d %q, want 400 naming HTTPS", addr, code, body)
		}
	}
	// A client that does not trust the CA refuses the server.
	if _, _, _, err := httpsGet("https://"+ad.HTTP+"/readyz", &tls.Config{}); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("client without the CA: %v, want an unknown authority", err)
	}

	state, err := grpcHealth(t, ad.GRPC, credentials.NewTLS(client))
	if err != nil {
		t.Fatalf("gRPC health over TLS: %v", err)
	}
	if state == nil || state.PeerCertificates[0].SerialNumber.Cmp(f.Server.Cert.SerialNumber) != 0 || state.Version < tls.VersionTLS12 {
		t.Errorf("gRPC TLS state %+v, want the server certificate over TLS 1.2+", state)
	}
	if _, err := grpcHealth(t, ad.GRPC, insecure.NewCredentials()); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext gRPC = %v, want Unavailable", err)
	}
}

// With a client CA, every server takes only clients presenting a certificate it signed. A
// refusal is checked over TLS 1.3, where it shows after the handshake (as a failed request or an
// unavailable connection, depending on timing), and over TLS 1.2, where the handshake itself
// fails with the server's reason.
func TestMutualTLS(t *testing.T) {
	a, f := startTLS(t, true)
	ad := a.Addrs()
	otherCA := tlstest.NewCA(t, "other CA")
	tests := []struct {
		name     string
		give     *tls.Config
		refused  bool
		wantTLS2 string // the TLS 1.2 handshake error of a refused client
	}{
		{name: "certificate from the CA", give: f.ClientConfig(t, true)},
		{name: "no certificate", give: f.ClientConfig(t, false), refused: true, wantTLS2: "remote error: tls: handshake failure"},
		{name: "certificate from another CA", give: tlstest.Presenting(t, f.ClientConfig(t, false), otherCA.Client(t, "stranger")),
			refused: true, wantTLS2: "remote error: tls: unknown certificate authority"},
		{name: "server certificate as client", give: tlstest.Presenting(t, f.ClientConfig(t, false), f.Server),
			refused: true, wantTLS2: "remote error: tls: bad certificate"},
	}
	urls := []string{"https://" + ad.HTTP + "/readyz", "https://" + ad.Admin + "/metrics"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tls12 := tt.give.Clone()
			tls12.MaxVersion = tls.VersionTLS12
			for _, url := range urls {
				code, body, _, err := httpsGet(url, tt.give)
				if !tt.refused && (err != nil || code != http.StatusOK) {
					t.Errorf("GET %s = %d %.100q, %v; want 200", url, code, body, err)
				}
				if tt.refused && err == nil {
					t.Errorf("GET %s = %d, want refused", url, code)
				}
				code, _, _, err = httpsGet(url, tls12)
				if tt.refused && (err == nil || !strings.Contains(err.Error(), tt.wantTLS2)) {
					t.Errorf("GET %s over TLS 1.2 = %d, %v; want refused with %q", url, code, err, tt.wantTLS2)
				}
				if !tt.refused && err != nil {
					t.Errorf("GET %s over TLS 1.2: %v", url, err)
				}
			}
			_, err := grpcHealth(t, ad.GRPC, credentials.NewTLS(tt.give))
			if !tt.refused && err != nil {
				t.Errorf("gRPC health: %v, want SERVING", err)
			}
			if tt.refused && status.Code(err) != codes.Unavailable {
				t.Errorf("gRPC health = %v, want Unavailable", err)
			}
			_, err = grpcHealth(t, ad.GRPC, credentials.NewTLS(tls12))
			if tt.refused && (status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), tt.wantTLS2)) {
				t.Errorf("gRPC health over TLS 1.2 = %v, want Unavailable with %q", err, tt.wantTLS2)
			}
		})
	}
}

// A renewed certificate is served on new connections without a restart, on every server; a bad
// replacement leaves the one in force serving.
func TestTLSCertificateReload(t *testing.T) {
	a, f := startTLS(t, false)
	client := f.ClientConfig(t, false)
	ad := a.Addrs()
	serials := func() (httpS, adminS, grpcS *big.Int) {
		t.Helper()
		var err error
		if _, _, httpS, err = httpsGet("https://"+ad.HTTP+"/healthz", client); err != nil {
			t.Fatalf("http: %v", err)
		}
		if _, _, adminS, err = httpsGet("https://"+ad.Admin+"/healthz", client); err != nil {
			t.Fatalf("admin: %v", err)
		}
		state, err := grpcHealth(t, ad.GRPC, credentials.NewTLS(client))
		if err != nil {
			t.Fatalf("grpc: %v", err)
		}
		return httpS, adminS, state.PeerCertificates[0].SerialNumber
	}
	renewed := f.CA.Server(t)
	f.Install(t, renewed)
	deadline := time.Now().Add(3*tlsconf.DefaultCheckEvery + 5*time.Second)
	for {
		h, ad, g := serials()
		want := renewed.Cert.SerialNumber
		if h.Cmp(want) == 0 && ad.Cmp(want) == 0 && g.Cmp(want) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serving serials http %v admin %v grpc %v, want the renewed %v", h, ad, g, want)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A key that is not the certificate's, then a certificate file that is not one.
	tlstest.WriteFile(t, f.Key, f.CA.Server(t).KeyPEM)
	time.Sleep(tlsconf.DefaultCheckEvery + 500*time.Millisecond)
	if h, ad, g := serials(); h.Cmp(renewed.Cert.SerialNumber) != 0 || ad.Cmp(renewed.Cert.SerialNumber) != 0 || g.Cmp(renewed.Cert.SerialNumber) != 0 {
		t.Errorf("after a mismatched key: serials %v %v %v, want %v kept", h, ad, g, renewed.Cert.SerialNumber)
	}
	tlstest.WriteFile(t, f.Cert, []byte("garbage"))
	time.Sleep(tlsconf.DefaultCheckEvery + 500*time.Millisecond)
	if h, ad, g := serials(); h.Cmp(renewed.Cert.SerialNumber) != 0 || ad.Cmp(renewed.Cert.SerialNumber) != 0 || g.Cmp(renewed.Cert.SerialNumber) != 0 {
		t.Errorf("after a garbage certificate: serials %v %v %v, want %v kept", h, ad, g, renewed.Cert.SerialNumber)
	}
}

// TLS files that cannot serve stop New with an error naming the flag and the file.
func TestNewRefusesBadTLSFiles(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	rdb := testenv.RedisSingle(t)
	f := tlstest.Write(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	otherKey := filepath.Join(dir, "other.key")
	tlstest.WriteFile(t, otherKey, f.CA.Server(t).KeyPEM)
	unreadable := filepath.Join(dir, "unreadable.key")
	tlstest.WriteFile(t, unreadable, f.Server.KeyPEM)
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give func(*Common)
		want string
	}{
		{name: "cert missing", give: func(c *Common) { c.TLSCert, c.TLSKey = missing, f.Key },
			want: "-tls-cert: certificate file " + missing + ": no such file or directory"},
		{name: "key missing", give: func(c *Common) { c.TLSCert, c.TLSKey = f.Cert, missing },
			want: "-tls-key: key file " + missing + ": no such file or directory"},
		{name: "key of another certificate", give: func(c *Common) { c.TLSCert, c.TLSKey = f.Cert, otherKey },
			want: "-tls-key: key file " + otherKey + ": with certificate " + f.Cert + ": tls: private key does not match public key"},
		{name: "client CA missing", give: func(c *Common) { c.TLSCert, c.TLSKey, c.TLSClientCA = f.Cert, f.Key, missing },
			want: "-tls-client-ca: client CA file " + missing + ": no such file or directory"},
		{name: "key without cert", give: func(c *Common) { c.TLSKey = f.Key },
			want: "-tls-key \"" + f.Key + "\": needs -tls-cert as well"},
		{name: "client CA is a key", give: func(c *Common) { c.TLSCert, c.TLSKey, c.TLSClientCA = f.Cert, f.Key, f.Key },
			want: "-tls-client-ca: client CA file " + f.Key + ": no PEM CA certificate in it"},
	}
	if os.Geteuid() != 0 { // root reads any file
		tests = append(tests, struct {
			name string
			give func(*Common)
			want string
		}{name: "key unreadable", give: func(c *Common) { c.TLSCert, c.TLSKey = f.Cert, unreadable },
			want: "-tls-key: key file " + unreadable + ": permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(natsURL, rdb.Options().Addr)
			tt.give(&cfg)
			log, rec := recordingLogger(t)
			_, err := New(context.Background(), testSpec, cfg, Hooks{}, log)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("New = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error()+rec.String(), "PRIVATE KEY") {
				t.Errorf("key material in the error or the log")
			}
		})
	}
}
