package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ticketpulse/ticketpulse/services/platform/clienttls"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

// endpoint is how tpctl reaches one service: its address, the credential it sends and TLS. Every
// command registers the same flags, so TICKETPULSE_KEY_FILE and the TLS variables serve them all,
// while each service's address has a variable of its own (-addrFlag).
type endpoint struct {
	addrFlag    string // "addr", "kpi-addr", "ingest-url"
	service     string // names the service in help and errors
	keyRequired string // what -key-file must hold, for the "required" error
	http        bool   // addr is a base URL (ingest), not host:port

	Addr, KeyFile                         string
	TLS                                   bool
	TLSCA, TLSCert, TLSKey, TLSServerName string
	Plaintext                             bool
}

func (e *endpoint) register(s *envflag.Set, def, keyHelp string) {
	if e.http {
		s.String(&e.Addr, e.addrFlag, def, "Base URL of "+e.service+"'s HTTP API, http:// or https:// (https implies TLS).")
	} else {
		s.String(&e.Addr, e.addrFlag, def, "host:port of "+e.service+"'s gRPC server.")
	}
	s.String(&e.KeyFile, "key-file", "", keyHelp)
	s.Bool(&e.TLS, "tls", false, "Speak TLS to "+e.service+", trusting the system's CAs (implied by -tls-ca and -tls-cert).")
	s.String(&e.TLSCA, "tls-ca", "", "PEM file of the CAs that sign "+e.service+"'s certificate; turns TLS on.")
	s.String(&e.TLSCert, "tls-cert", "", "PEM client certificate for "+e.service+"'s mutual TLS (with -tls-key); turns TLS on.")
	s.String(&e.TLSKey, "tls-key", "", "PEM private key of -tls-cert.")
	s.String(&e.TLSServerName, "tls-server-name", "", "Name expected in "+e.service+"'s certificate; default the host of -"+e.addrFlag+".")
	s.Bool(&e.Plaintext, "plaintext", false, "Allow sending the API key without TLS to an address that is not loopback (never do this across a network you do not control). Loopback addresses are plaintext unless a TLS flag is set.")
}

// credentialHelp is -key-file's help for the commands a tenant's key may run.
func credentialHelp(scope string) string {
	return "File holding the credential sent as \"Authorization: Bearer\": an API key of the tenant with the scope " + scope + " (tpctl apikey new), an operator key, or an OpenID Connect ID token; never printed. Required."
}

func (e *endpoint) useTLS() bool {
	return e.TLS || e.TLSCA != "" || e.TLSCert != "" || (e.http && e.scheme() == "https")
}

func (e *endpoint) scheme() string {
	if u, err := url.Parse(e.Addr); err == nil {
		return u.Scheme
	}
	return ""
}

// host is the host of -addr, or an error naming the flag.
func (e *endpoint) host() (string, error) {
	if !e.http {
		host, _, err := net.SplitHostPort(e.Addr)
		if err != nil {
			return "", fmt.Errorf("-%s %q: want host:port", e.addrFlag, e.Addr)
		}
		return host, nil
	}
	u, err := url.Parse(e.Addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("-%s %q: want http://host:port or https://host:port", e.addrFlag, e.Addr)
	}
	if u.Scheme == "http" && (e.TLS || e.TLSCA != "" || e.TLSCert != "") {
		return "", fmt.Errorf("-%s %q: a TLS flag is set; use https://", e.addrFlag, e.Addr)
	}
	return u.Hostname(), nil
}

// check returns every problem with the connection flags, in flag order.
func (e *endpoint) check() []error {
	var errs []error
	if e.KeyFile == "" {
		errs = append(errs, fmt.Errorf("-key-file: required (%s)", e.keyRequired))
	}
	host, hostErr := e.host()
	if hostErr != nil {
		errs = append(errs, hostErr)
	}
	if (e.TLSCert == "") != (e.TLSKey == "") {
		errs = append(errs, errors.New("-tls-cert and -tls-key: give both or neither"))
	}
	if hostErr == nil && !e.useTLS() && !e.Plaintext && !loopback(host) {
		errs = append(errs, fmt.Errorf("-%s %s is not a loopback address: pass -tls (or -tls-ca) so the API key is not sent in clear, or -plaintext to send it anyway", e.addrFlag, e.Addr))
	}
	return errs
}

func (e *endpoint) tlsConfig() (*tls.Config, error) {
	tc, err := clienttls.Config(e.TLSCA, e.TLSCert, e.TLSKey)
	if err != nil {
		return nil, err
	}
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if e.TLSServerName != "" {
		tc.ServerName = e.TLSServerName
	}
	return tc, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type bearer struct {
	key    string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.key}, nil
}

// RequireTransportSecurity is false only where check allowed plaintext (loopback or -plaintext).
func (b bearer) RequireTransportSecurity() bool { return b.secure }

// dial is a gRPC client of the service that sends the credential with every call.
func (e *endpoint) dial() (*grpc.ClientConn, error) {
	key, err := readKeyFile(e.KeyFile)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if e.useTLS() {
		tc, err := e.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(e.Addr, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearer{key: key, secure: e.useTLS()}))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", e.Addr, err)
	}
	return conn, nil
}

// httpClient is an HTTP client of the service and the credential to send with each request.
func (e *endpoint) httpClient(timeout time.Duration) (*http.Client, string, error) {
	key, err := readKeyFile(e.KeyFile)
	if err != nil {
		return nil, "", err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if e.useTLS() {
		if tr.TLSClientConfig, err = e.tlsConfig(); err != nil {
			return nil, "", err
		}
	}
	return &http.Client{Transport: tr, Timeout: timeout}, key, nil
}
