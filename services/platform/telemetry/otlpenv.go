package telemetry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signal names a kind of telemetry the OTLP exporters send; its variables are
// OTEL_EXPORTER_OTLP_<SIGNAL>_*, each falling back to OTEL_EXPORTER_OTLP_*.
type Signal string

// The signals Ticketpulse exports.
const (
	Traces  Signal = "TRACES"
	Metrics Signal = "METRICS"
)

// The OTLP protocols an exporter speaks (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Bounds of what the environment may ask for: an export never waits longer than a minute, and
// the headers sent with each export stay small.
const (
	DefaultOTLPTimeout = 10 * time.Second
	maxOTLPTimeout     = time.Minute
	maxOTLPHeaders     = 32
	maxOTLPHeaderBytes = 8 << 10
)

// OTLP is where and how one signal's OTLP exporter sends, as the standard OTEL_* variables (and
// the -otlp-endpoint flag) say. Headers may hold credentials: OTLP's String never shows their
// values, and no error of this package quotes one.
type OTLP struct {
	// Enabled is false when nothing is to be exported: no endpoint is set, the signal's
	// exporter is "none", or OTEL_SDK_DISABLED is true. Then no connection is ever attempted.
	Enabled bool
	// Protocol is ProtocolGRPC or ProtocolHTTPProtobuf.
	Protocol string
	// Endpoint is host:port for gRPC; for HTTP the URL's host:port, with URLPath the path
	// (/v1/traces, /v1/metrics unless the signal's own endpoint names another).
	Endpoint, URLPath string
	// Insecure sends in plain text (an http:// endpoint, or OTEL_EXPORTER_OTLP_INSECURE=true
	// for one without a scheme).
	Insecure bool
	// TLS is the configuration of a secure connection: the CA of OTEL_EXPORTER_OTLP_CERTIFICATE
	// (the system's CAs without it) and the client certificate of
	// OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / _CLIENT_KEY. Nil when Insecure.
	TLS     *tls.Config
	Headers map[string]string
	Timeout time.Duration
	// Gzip compresses each export (OTEL_EXPORTER_OTLP_COMPRESSION=gzip).
	Gzip bool
}

// String describes the exporter for a log line: never the headers' values.
func (o OTLP) String() string {
	if !o.Enabled {
		return "off"
	}
	scheme := "https"
	if o.Insecure {
		scheme = "http"
	}
	names := make([]string, 0, len(o.Headers))
	for k := range o.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	return fmt.Sprintf("%s %s://%s%s headers=%v timeout=%s gzip=%t", o.Protocol, scheme, o.Endpoint, o.URLPath, names, o.Timeout, o.Gzip)
}

// Lookup reads an environment variable; os.LookupEnv in a service, a map in tests.
type Lookup func(string) (string, bool)

// OTLPFromEnv reads signal's exporter settings from the standard variables through lookup.
// flagEndpoint (the -otlp-endpoint flag, host:port or a URL) is the endpoint when neither
// OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT nor OTEL_EXPORTER_OTLP_ENDPOINT is set; a host:port
// without a scheme from the flag is spoken to in plain text, as the flag always has. A value
// that cannot work is an error naming its variable; several are joined.
func OTLPFromEnv(lookup Lookup, signal Signal, flagEndpoint string) (OTLP, error) {
	e := otlpEnv{lookup: lookup, signal: signal}
	o := OTLP{Protocol: ProtocolGRPC, Timeout: DefaultOTLPTimeout}

	disabled := e.bool("OTEL_SDK_DISABLED")
	exporter, exporterVar := "", "OTEL_"+string(signal)+"_EXPORTER"
	if v, ok := lookup(exporterVar); ok {
		exporter = strings.TrimSpace(v)
		switch exporter {
		case "", "otlp", "none":
		default:
			e.fail(exporterVar, fmt.Errorf("%q: want otlp or none", exporter))
		}
	}
	if p, name, ok := e.get("PROTOCOL"); ok {
		switch p {
		case ProtocolGRPC, ProtocolHTTPProtobuf:
			o.Protocol = p
		default:
			e.fail(name, fmt.Errorf("%q: want grpc or http/protobuf", p))
		}
	}

	raw, name, own := e.signalOnly("ENDPOINT")
	if !own {
		raw, name, _ = e.get("ENDPOINT")
	}
	fromFlag := false
	if raw == "" && flagEndpoint != "" {
		raw, name, fromFlag = flagEndpoint, "-otlp-endpoint", true
	}
	if raw == "" && exporter == "otlp" {
		// Asked for by name without an endpoint: the collector's default port on this host.
		raw, name = "http://localhost:4317", exporterVar
		if o.Protocol == ProtocolHTTPProtobuf {
			raw = "http://localhost:4318"
		}
	}
	o.Enabled = raw != "" && exporter != "none" && !disabled
	if raw != "" {
		e.endpoint(&o, name, raw, own, fromFlag)
	}

	if v, name, ok := e.get("HEADERS"); ok {
		h, err := parseHeaders(v)
		if err != nil {
			e.fail(name, err)
		}
		o.Headers = h
	}
	if v, name, ok := e.get("TIMEOUT"); ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			e.fail(name, fmt.Errorf("%q: want milliseconds, a whole number", v))
		case ms <= 0 || time.Duration(ms)*time.Millisecond > maxOTLPTimeout:
			e.fail(name, fmt.Errorf("%d: want 1 to %d milliseconds", ms, maxOTLPTimeout.Milliseconds()))
		default:
			o.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	if v, name, ok := e.get("COMPRESSION"); ok {
		switch v {
		case "gzip":
			o.Gzip = true
		case "none", "":
		default:
			e.fail(name, fmt.Errorf("%q: want gzip or none", v))
		}
	}
	if !o.Insecure {
		o.TLS = e.tls()
	}
	if err := errors.Join(e.errs...); err != nil {
		return OTLP{}, err
	}
	return o, nil
}

// otlpEnv reads one signal's variables and collects what is wrong with them.
type otlpEnv struct {
	lookup Lookup
	signal Signal
	errs   []error
}

func (e *otlpEnv) fail(name string, err error) {
	e.errs = append(e.errs, fmt.Errorf("%s %w", name, err))
}

// signalOnly reads OTEL_EXPORTER_OTLP_<SIGNAL>_<key>.
func (e *otlpEnv) signalOnly(key string) (value, name string, ok bool) {
	name = "OTEL_EXPORTER_OTLP_" + string(e.signal) + "_" + key
	v, ok := e.lookup(name)
	return strings.TrimSpace(v), name, ok && strings.TrimSpace(v) != ""
}

// get reads the signal's own variable, or else the general one; an empty value counts as unset.
func (e *otlpEnv) get(key string) (value, name string, ok bool) {
	if v, name, ok := e.signalOnly(key); ok {
		return v, name, true
	}
	name = "OTEL_EXPORTER_OTLP_" + key
	v, ok := e.lookup(name)
	return strings.TrimSpace(v), name, ok && strings.TrimSpace(v) != ""
}

func (e *otlpEnv) bool(name string) bool {
	v, ok := e.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return false
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		e.fail(name, fmt.Errorf("%q: want true or false", v))
	}
	return b
}

// endpoint fills the endpoint fields from raw. A URL's scheme says whether TLS is spoken; the
// general HTTP endpoint is a base the signal's path is added to, a signal's own one is used as is.
func (e *otlpEnv) endpoint(o *OTLP, name, raw string, own, fromFlag bool) {
	path := "/v1/" + strings.ToLower(string(e.signal))
	if !strings.Contains(raw, "://") {
		// host:port, the form -otlp-endpoint has always taken.
		if _, _, ok := strings.Cut(raw, ":"); !ok || strings.ContainsAny(raw, "/?#") {
			e.fail(name, fmt.Errorf("%q: want host:port or an http:// or https:// URL", raw))
			return
		}
		o.Endpoint, o.URLPath = raw, path
		o.Insecure = fromFlag
		if v, name, ok := e.get("INSECURE"); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				e.fail(name, fmt.Errorf("%q: want true or false", v))
			}
			o.Insecure = b
		}
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// The URL is not echoed: a malformed one may carry a password.
		e.fail(name, errors.New("is not an http:// or https:// URL with a host and no user, query or fragment"))
		return
	}
	o.Endpoint, o.Insecure = u.Host, u.Scheme == "http"
	if u.Port() == "" {
		port := "4317"
		if o.Protocol == ProtocolHTTPProtobuf {
			port = "4318"
		}
		o.Endpoint = u.Host + ":" + port
	}
	switch {
	case o.Protocol == ProtocolGRPC && strings.Trim(u.Path, "/") != "":
		e.fail(name, fmt.Errorf("%q: a gRPC endpoint has no path", raw))
	case own && u.Path != "":
		o.URLPath = u.Path
	default:
		o.URLPath = strings.TrimSuffix(u.Path, "/") + path
	}
}

// tls reads the CA and client certificate files.
func (e *otlpEnv) tls() *tls.Config {
	ca, caName, caSet := e.get("CERTIFICATE")
	cert, certName, certSet := e.get("CLIENT_CERTIFICATE")
	key, keyName, keySet := e.get("CLIENT_KEY")
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if !caSet && !certSet && !keySet {
		return c
	}
	if caSet {
		pem, err := os.ReadFile(ca)
		switch {
		case err != nil:
			e.fail(caName, fmt.Errorf("%q: %w", ca, unwrapPath(err)))
		default:
			c.RootCAs = x509.NewCertPool()
			if !c.RootCAs.AppendCertsFromPEM(pem) {
				e.fail(caName, fmt.Errorf("%q: no PEM certificate in it", ca))
			}
		}
	}
	switch {
	case certSet != keySet && certSet:
		e.fail(certName, fmt.Errorf("%q: needs %s as well", cert, keyName))
	case certSet != keySet:
		e.fail(keyName, fmt.Errorf("%q: needs %s as well", key, certName))
	case certSet:
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			// The key file's content never reaches the message; the pair's error names no bytes.
			e.fail(certName, fmt.Errorf("%q with %s %q: %w", cert, keyName, key, unwrapPath(err)))
			break
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c
}

// unwrapPath drops the path a *PathError repeats: the message names the file already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseHeaders reads the W3C-baggage-like list "key1=value1,key2=value2", values URL-encoded.
// Errors name the entry by position, never its value: a header is often an API key.
func parseHeaders(v string) (map[string]string, error) {
	if len(v) > maxOTLPHeaderBytes {
		return nil, fmt.Errorf("is %d bytes: at most %d", len(v), maxOTLPHeaderBytes)
	}
	h := map[string]string{}
	for i, entry := range strings.Split(v, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		k, val, ok := strings.Cut(entry, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || !validHeaderName(k) {
			return nil, fmt.Errorf("entry %d: want name=value with a header name of letters, digits and -", i+1)
		}
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): the value is not URL-encoded", i+1, k)
		}
		h[k] = dec
	}
	if len(h) > maxOTLPHeaders {
		return nil, fmt.Errorf("has %d headers: at most %d", len(h), maxOTLPHeaders)
	}
	return h, nil
}

func validHeaderName(k string) bool {
	for _, r := range k {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
