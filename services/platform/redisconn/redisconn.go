// Package redisconn opens go-redis clients from a URL.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketpulse/ticketpulse/services/platform/clienttls"
	"github.com/ticketpulse/ticketpulse/services/platform/redact"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// TLS are the files of a TLS connection to Redis: the CAs that sign the server's certificate
// (the system's when empty) and a client certificate with its key (for tls-auth-clients). Any of
// them turns TLS on, as a rediss:// URL does.
type TLS struct {
	CA, Cert, Key string
}

// Check reports each setting that cannot work, naming its flag (prefix + "tls-cert" and so on).
func (t TLS) Check(prefix string) []error {
	var errs []error
	if (t.Cert == "") != (t.Key == "") {
		errs = append(errs, fmt.Errorf("-%stls-cert and -%stls-key: give both or neither", prefix, prefix))
	}
	for _, f := range []struct{ flag, path string }{{"tls-ca", t.CA}, {"tls-cert", t.Cert}, {"tls-key", t.Key}} {
		if err := clienttls.Readable(f.path); err != nil {
			errs = append(errs, fmt.Errorf("-%s%s: %w", prefix, f.flag, err))
		}
	}
	return errs
}

// Open parses a redis:// or rediss:// URL, connects and pings. The client is sized for
// pipelined batches.
func Open(ctx context.Context, url string) (*redis.Client, error) {
	return Dial(ctx, url, TLS{})
}

// Dial is Open with TLS files. A user and password in the URL authenticate as a Redis ACL user;
// no error repeats the password.
func Dial(ctx context.Context, url string, t TLS) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// url.Error repeats the URL, password and all.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis url %q: %w", redact.URL(url), err)
	}
	tc, err := clienttls.Config(t.CA, t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", redact.URL(url), err)
	}
	if tc != nil {
		if opt.TLSConfig != nil {
			// rediss:// set the server name to check; keep it.
			tc.ServerName = opt.TLSConfig.ServerName
		} else {
			tc.ServerName = hostOf(opt.Addr)
		}
		opt.TLSConfig = tc
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = 5 * time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = 5 * time.Second
	}
	// RESP2 keeps HGETALL replies flat and avoids the client's CLIENT SETINFO round trip noise.
	opt.Protocol = 2
	opt.DisableIdentity = true
	c := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("ping redis %s: %w", redact.URL(url), err)
	}
	return c, nil
}

func hostOf(addr string) string {
	u := neturl.URL{Host: addr}
	return u.Hostname()
}

// Instrument records each command or pipeline the client sends as a span of the trace it is
// sent in (none outside a trace: probes and background loops stay untraced). Statements are
// left out: their arguments are ticket data and, for AUTH, a password.
func Instrument(c *redis.Client, tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(telemetry.ChildOnly(tp)),
		redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false), redisotel.WithDialFilter(true)); err != nil {
		return fmt.Errorf("redis tracing: %w", err)
	}
	return nil
}
