// Package natsconn connects to NATS; the streams themselves are package stream.
package natsconn

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketpulse/ticketpulse/services/platform/clienttls"
	"github.com/ticketpulse/ticketpulse/services/platform/redact"
)

// Auth is how a client proves who it is to NATS beyond a user and password in the URL (which
// nats.go reads from the URL itself), and how it checks the server.
type Auth struct {
	// Creds is a .creds file: a user JWT and its NKey seed (decentralised auth).
	Creds string
	// NKey is a file holding an NKey seed (SU...), for a server that lists the user's public key.
	NKey string
	// TLSCA is a PEM file of the CAs that sign the server's certificate; empty trusts the system's.
	TLSCA string
	// TLSCert and TLSKey are the client certificate and its key, for a server that requires them.
	TLSCert, TLSKey string
}

// Check reports each setting that cannot work, naming its flag (prefix + "creds" and so on).
func (a Auth) Check(prefix string) []error {
	var errs []error
	if a.Creds != "" && a.NKey != "" {
		errs = append(errs, fmt.Errorf("-%screds and -%snkey: give one of them, not both", prefix, prefix))
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		errs = append(errs, fmt.Errorf("-%stls-cert and -%stls-key: give both or neither", prefix, prefix))
	}
	for _, f := range []struct{ flag, path string }{
		{"creds", a.Creds}, {"nkey", a.NKey}, {"tls-ca", a.TLSCA}, {"tls-cert", a.TLSCert}, {"tls-key", a.TLSKey},
	} {
		if err := clienttls.Readable(f.path); err != nil {
			errs = append(errs, fmt.Errorf("-%s%s: %w", prefix, f.flag, err))
		}
	}
	return errs
}

// Options are the nats.go options for a.
func (a Auth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if a.Creds != "" {
		opts = append(opts, nats.UserCredentials(a.Creds))
	}
	if a.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(a.NKey)
		if err != nil {
			// nats.go's errors about a seed never include the seed.
			return nil, fmt.Errorf("nkey seed %s: %w", a.NKey, err)
		}
		opts = append(opts, o)
	}
	tc, err := clienttls.Config(a.TLSCA, a.TLSCert, a.TLSKey)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// InboxPrefix is where replies to name's requests arrive: _INBOX.<name>. A server can then let
// each service subscribe to its own replies only (deploy/nats.conf), so no service reads the
// messages JetStream delivers to another.
func InboxPrefix(name string) string { return "_INBOX." + name }

// Connect dials url as name with reconnects that never give up, logging connection changes.
// A user and password in url authenticate; auth adds credentials files and TLS. An error never
// shows a password: the URL is redacted.
func Connect(url, name string, auth Auth, log *slog.Logger) (*nats.Conn, error) {
	authOpts, err := auth.Options()
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", redact.URL(url), err)
	}
	opts := append([]nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(InboxPrefix(name)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		// A permissions violation (a subject the server's config does not allow this user) would
		// otherwise pass unseen.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("nats", "subject", sub.Subject, "err", err)
				return
			}
			log.Error("nats", "err", err)
		}),
	}, authOpts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", redact.URL(url), err)
	}
	return nc, nil
}
