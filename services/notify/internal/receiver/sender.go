package receiver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
)

// DefaultTimeout bounds one attempt when Limits.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Response bodies are read up to maxBody; errors quote at most maxExcerpt bytes of them.
const (
	maxBody    = 64 << 10
	maxExcerpt = 200
)

// UserAgent is sent with every HTTP request.
const UserAgent = "ticketpulse-notify"

// ContextDialer opens network connections (a *net.Dialer is one).
type ContextDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Options are New's dependencies; the zero value is fit for production.
type Options struct {
	// HTTPClient sends the chat and webhook requests. Its CheckRedirect is replaced so that
	// redirects are never followed; its Timeout should be zero (the attempt's context bounds
	// it). Default: a client of its own, built on Dialer and RootCAs, with no global timeout.
	HTTPClient *http.Client
	// Now stamps the webhook-timestamp header and the e-mail Date. Default: time.Now.
	Now func() time.Time
	// Dialer opens SMTP connections, and the default HTTP client's. Default: a net.Dialer.
	Dialer ContextDialer
	// RootCAs verifies the servers' certificates (the default HTTP client's and SMTP's);
	// nil means the system's.
	RootCAs *x509.CertPool
	// HelloName is the name the SMTP client gives in EHLO. Default: the host name, or
	// "localhost".
	HelloName string
	// TracerProvider, when set, records each HTTP request (sending its traceparent) and SMTP
	// session as a span of the attempt's trace.
	TracerProvider trace.TracerProvider
}

// New compiles cfg's templates (the defaults where cfg leaves them empty) and returns the
// Sender for cfg.Kind. It fails on a broken template or an incomplete config.
func New(cfg Config, opts Options) (Sender, error) {
	var esc *markup
	switch cfg.Kind {
	case KindSlack:
		esc = &slackMarkup
	case KindTeams:
		esc = &teamsMarkup
	}
	tpl, err := compileTemplates(cfg.Name, cfg.Templates, esc)
	if err != nil {
		return nil, fmt.Errorf("receiver %q: %w", cfg.Name, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{KeepAlive: 30 * time.Second}
	}
	timeout := cfg.Limits.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	base := baseSender{name: cfg.Name, kind: cfg.Kind, tpl: tpl, timeout: timeout, now: opts.Now}

	var s Sender
	switch cfg.Kind {
	case KindSlack, KindTeams:
		chat := cfg.Slack
		if cfg.Kind == KindTeams {
			chat = cfg.Teams
		}
		if chat == nil {
			return nil, fmt.Errorf("receiver %q: %s config missing", cfg.Name, cfg.Kind)
		}
		h, err := newHTTPSender(base, chat.URL, opts)
		if err != nil {
			return nil, fmt.Errorf("receiver %q: %w", cfg.Name, err)
		}
		if cfg.Kind == KindSlack {
			s = &chatSender{httpSender: h, payload: slackAny}
		} else {
			s = &chatSender{httpSender: h, payload: teamsAny}
		}
	case KindWebhook:
		if cfg.Webhook == nil {
			return nil, fmt.Errorf("receiver %q: webhook config missing", cfg.Name)
		}
		h, err := newHTTPSender(base, cfg.Webhook.URL, opts)
		if err != nil {
			return nil, fmt.Errorf("receiver %q: %w", cfg.Name, err)
		}
		keys, err := parseSecrets(cfg.Webhook.Secrets)
		if err != nil {
			return nil, fmt.Errorf("receiver %q: %w", cfg.Name, err)
		}
		s = &webhookSender{httpSender: h, keys: keys}
	case KindEmail:
		e, err := newEmailSender(base, cfg.Email, opts)
		if err != nil {
			return nil, fmt.Errorf("receiver %q: %w", cfg.Name, err)
		}
		s = e
	default:
		return nil, fmt.Errorf("receiver %q: unknown kind %q", cfg.Name, cfg.Kind)
	}
	return s, nil
}

// baseSender is what every kind shares.
type baseSender struct {
	name    string
	kind    string
	tpl     *templates
	timeout time.Duration
	now     func() time.Time
}

func (b *baseSender) errorf(format string, args ...any) error {
	return fmt.Errorf(b.kind+": "+format, args...)
}

// httpSender POSTs a JSON body to a URL.
type httpSender struct {
	baseSender
	url    string
	client *http.Client
}

func newHTTPSender(base baseSender, rawURL string, opts Options) (httpSender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse quotes the URL, a secret: report only that it is malformed.
		return httpSender{}, fmt.Errorf("%s: malformed URL", base.kind)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return httpSender{}, fmt.Errorf("%s: URL must be absolute http(s)", base.kind)
	}
	var client http.Client
	if opts.HTTPClient != nil {
		client = *opts.HTTPClient
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = opts.Dialer.DialContext
		tr.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
		tr.MaxIdleConnsPerHost = 4
		client.Transport = tr
	}
	if opts.TracerProvider != nil {
		base := client.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		client.Transport = tracedTransport(base, opts.TracerProvider)
	}
	// Never follow redirects: a webhook URL that redirects is misconfigured, and following one
	// would re-send the body (and its signature) to wherever the Location points.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return httpSender{baseSender: base, url: rawURL, client: &client}, nil
}

// post makes the attempt: body, extra headers. It fills Status, Err, Retryable and Gone.
func (h *httpSender) post(ctx context.Context, body []byte, header http.Header) Result {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return Result{Err: h.errorf("building request: %v", unwrapURLError(err))}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)

	resp, err := h.client.Do(req)
	if err != nil {
		return h.transportFailure(ctx, err)
	}
	defer resp.Body.Close()
	got, readErr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	res := classifyHTTP(resp)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// A 2xx is a delivery even if reading the rest of the body fails.
		return res
	}
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if t := http.StatusText(resp.StatusCode); t != "" {
		msg += " " + t
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg += " (redirect not followed)"
	}
	if ex := excerpt(got); ex != "" {
		msg += ": " + strconv.Quote(ex)
	} else if readErr != nil {
		msg += fmt.Sprintf(" (reading body: %v)", unwrapURLError(readErr))
	}
	res.Err = h.errorf("%s", msg)
	return res
}

// classifyHTTP maps a response status to an outcome:
//   - 2xx: delivered.
//   - 3xx: not retryable. Redirects are not followed (see newHTTPSender); the same URL will
//     redirect again, so this is a configuration problem.
//   - 408 Request Timeout, 429 Too Many Requests: retryable, the receiver asks us to come back.
//   - 410 Gone: the webhook was deleted (Slack and Teams answer so for a removed hook): Gone,
//     not retryable; the caller disables the receiver.
//   - other 4xx: not retryable, the request itself is wrong (bad payload, revoked URL, 404).
//   - 5xx: retryable, the receiver's trouble is usually temporary.
func classifyHTTP(resp *http.Response) Result {
	code := resp.StatusCode
	res := Result{Status: code}
	switch {
	case code >= 200 && code < 300:
		return res
	case code == http.StatusGone:
		res.Gone = true
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		res.Retryable = true
		res.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return res
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// transportFailure classifies an attempt that got no response.
func (h *httpSender) transportFailure(ctx context.Context, err error) Result {
	err = unwrapURLError(err) // *url.Error would quote the URL, a secret
	retryable, what := classifyNetError(ctx, err)
	if what == "timeout" {
		what = fmt.Sprintf("timeout (%v)", h.timeout)
	}
	return Result{Err: h.errorf("%s: %v", what, err), Retryable: retryable}
}

// classifyNetError decides whether a failure to talk to a server may pass:
//   - the attempt's deadline (or an i/o timeout): retryable, the server may be slow just now;
//   - the caller cancelled: retryable, the attempt was not concluded;
//   - certificate verification failures (unknown authority, wrong host name, expired) and a
//     server that does not speak TLS: not retryable, they are configuration problems that
//     another attempt will meet again;
//   - DNS failures, including "no such host": retryable, resolvers fail transiently and a
//     record may be (re)published;
//   - any other network error (refused, reset, unreachable): retryable.
func classifyNetError(ctx context.Context, err error) (retryable bool, what string) {
	var (
		certErr     *tls.CertificateVerificationError
		unknownAuth x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		recordErr   tls.RecordHeaderError
		dnsErr      *net.DNSError
		netErr      net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(ctx.Err() == context.DeadlineExceeded):
		return true, "timeout"
	case errors.Is(err, context.Canceled):
		return true, "cancelled"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &invalidErr):
		return false, "TLS certificate"
	case errors.As(err, &recordErr):
		return false, "TLS handshake"
	case errors.As(err, &dnsErr):
		return true, "DNS"
	case errors.As(err, &netErr) && netErr.Timeout():
		return true, "timeout"
	}
	return true, "network"
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// excerpt is the start of a response body for an error message: at most maxExcerpt bytes,
// cut at a rune boundary, white space collapsed.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) <= maxExcerpt {
		return strings.ToValidUTF8(s, "?")
	}
	cut := maxExcerpt - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "?") + "…"
}

// timed runs one attempt and records its latency.
func timed(f func() Result) Result {
	start := time.Now()
	res := f()
	res.Latency = time.Since(start)
	return res
}

// checkNotification rejects what no attempt could deliver.
func checkNotification(n *Notification) error {
	if n == nil || len(n.Changes) == 0 {
		return errors.New("notification has no changes")
	}
	return nil
}
