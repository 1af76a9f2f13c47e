// Package servicetest runs a whole service in-process for a test, against real NATS and Redis
// servers (package testenv starts them): it waits until the service serves and, when the test
// ends, stops it and checks that it stopped cleanly. A service may be started with TLS (and
// mTLS) on certificates made for the test; the helpers then reach it over TLS.
package servicetest

import (
	"context"
	"crypto/tls"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/tlsconf/tlstest"
)

// StartTimeout bounds how long a service may take to serve; StopTimeout how long it may take to
// stop once cancelled.
const (
	StartTimeout = 15 * time.Second
	StopTimeout  = 15 * time.Second
)

// Settings are the common settings of a service using the NATS server at natsURL and the Redis at
// redisURL (empty for a service without Redis), listening on free loopback ports, the admin
// server included, without TLS.
func Settings(natsURL, redisURL string) service.Common {
	return service.Common{NATSURL: natsURL, RedisURL: redisURL, LogLevel: "info", LogFormat: "text",
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}
}

// WithTLS makes a CA, a server certificate for 127.0.0.1 and a client certificate, and sets c
// to serve TLS with them; mutual also requires client certificates signed by the CA. Start the
// service with StartTLS and the returned files' ClientConfig.
func WithTLS(t testing.TB, c *service.Common, mutual bool) *tlstest.Files {
	t.Helper()
	f := tlstest.Write(t)
	c.TLSCert, c.TLSKey = f.Cert, f.Key
	if mutual {
		c.TLSClientCA = f.ClientCA
	}
	return f
}

// Running is a service a test started.
type Running struct {
	// Addrs are where the service listens.
	service.Addrs

	t testing.TB
	// tls is how the test's clients reach the service; nil for plain connections.
	tls    *tls.Config
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	stop   sync.Once
}

// Start runs run in the background, passing it the hooks the service must be started with, and
// returns once the service's listeners are bound and /readyz on its HTTP address answers 200.
// When the test ends the service is stopped as by Stop.
func Start(t testing.TB, run func(ctx context.Context, hooks service.Hooks) error) *Running {
	t.Helper()
	return StartTLS(t, nil, run)
}

// StartTLS is Start for a service that serves TLS: client is how the test reaches it (trusting
// its CA, presenting a client certificate for mTLS), and what URL, HTTPClient and Dial use.
func StartTLS(t testing.TB, client *tls.Config, run func(ctx context.Context, hooks service.Hooks) error) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{t: t, tls: client, cancel: cancel, done: make(chan struct{})}
	listening := make(chan service.Addrs, 1)
	go func() {
		defer close(r.done)
		r.err = run(ctx, service.Hooks{Listening: func(a service.Addrs) { listening <- a }})
	}()
	t.Cleanup(r.Stop)
	deadline := time.After(StartTimeout)
	select {
	case r.Addrs = <-listening:
	case <-r.done:
		t.Fatalf("service stopped at start: %v", r.err)
	case <-deadline:
		cancel()
		t.Fatalf("service did not listen within %s", StartTimeout)
	}
	hc := r.HTTPClient()
	hc.Timeout = time.Second
	for !ready(hc, r.URL("/readyz")) {
		select {
		case <-r.done:
			t.Fatalf("service stopped at start: %v", r.err)
		case <-deadline:
			cancel()
			t.Fatalf("/readyz of the service did not answer 200 within %s", StartTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return r
}

func ready(c *http.Client, url string) bool {
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// URL is path on the service's HTTP address, https when it serves TLS.
func (r *Running) URL(path string) string { return r.scheme() + r.HTTP + path }

// AdminURL is path on the service's admin address (/metrics, /debug/pprof/), https when it
// serves TLS. The test fails when the service has no admin server.
func (r *Running) AdminURL(path string) string {
	r.t.Helper()
	if r.Admin == "" {
		r.t.Fatal("the service has no admin server: its settings leave AdminAddr empty")
	}
	return r.scheme() + r.Admin + path
}

func (r *Running) scheme() string {
	if r.tls != nil {
		return "https://"
	}
	return "http://"
}

// HTTPClient is a new client of the service's HTTP and admin servers, with a 5 s timeout.
func (r *Running) HTTPClient() *http.Client {
	c := &http.Client{Timeout: 5 * time.Second}
	if r.tls != nil {
		c.Transport = &http.Transport{TLSClientConfig: r.tls.Clone(), ForceAttemptHTTP2: true}
	}
	return c
}

// Cancel asks the service to stop and returns at once.
func (r *Running) Cancel() { r.cancel() }

// Done is closed once the service's run returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err is what the service's run returned; read it after Done is closed.
func (r *Running) Err() error { return r.err }

// Stop cancels the service and fails the test unless it returns nil within StopTimeout. Only the
// first call does anything, so a test may stop a service before it ends.
func (r *Running) Stop() {
	r.stop.Do(func() {
		r.cancel()
		select {
		case <-r.done:
			if r.err != nil {
				r.t.Errorf("service stopped with error: %v", r.err)
			}
		case <-time.After(StopTimeout):
			r.t.Errorf("service did not stop within %s", StopTimeout)
		}
	})
}

// Dial returns a gRPC client connection to the service, over TLS when it serves TLS, closed when
// the test ends.
func (r *Running) Dial() *grpc.ClientConn {
	r.t.Helper()
	return r.DialAs("")
}
