package receiver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// emailSender submits a message over SMTP.
type emailSender struct {
	baseSender
	cfg       EmailConfig
	host      string // of Smarthost: the TLS server name
	from      *mail.Address
	to        []*mail.Address
	dialer    ContextDialer
	tlsConfig *tls.Config
	helloName string
	tracer    trace.Tracer
}

func newEmailSender(base baseSender, cfg *EmailConfig, opts Options) (*emailSender, error) {
	if cfg == nil {
		return nil, errors.New("email config missing")
	}
	host, _, err := net.SplitHostPort(cfg.Smarthost)
	if err != nil || host == "" {
		return nil, fmt.Errorf("email: smarthost %q is not host:port", cfg.Smarthost)
	}
	switch cfg.TLS {
	case TLSStartTLS, TLSImplicit, TLSNone:
	case "":
		cfg.TLS = TLSStartTLS
	default:
		return nil, fmt.Errorf("email: unknown TLS mode %q", cfg.TLS)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: from %q: %w", cfg.From, err)
	}
	if len(cfg.To) == 0 {
		return nil, errors.New("email: no recipients")
	}
	to := make([]*mail.Address, 0, len(cfg.To))
	for _, t := range cfg.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("email: to %q: %w", t, err)
		}
		to = append(to, a)
	}
	hello := opts.HelloName
	if hello == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			hello = h
		} else {
			hello = "localhost"
		}
	}
	return &emailSender{
		baseSender: base,
		cfg:        *cfg,
		host:       host,
		from:       from,
		to:         to,
		dialer:     opts.Dialer,
		helloName:  hello,
		tracer:     tracerOf(opts.TracerProvider),
		tlsConfig: &tls.Config{
			ServerName:         host,
			RootCAs:            opts.RootCAs,
			InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // tests with a self-signed relay only
			MinVersion:         tls.VersionTLS12,
		},
	}, nil
}

func (s *emailSender) Send(ctx context.Context, n *Notification) Result {
	return timed(func() Result {
		if err := checkNotification(n); err != nil {
			return Result{Err: s.errorf("%v", err)}
		}
		r, err := s.tpl.render(n, true)
		if err != nil {
			return Result{Err: s.errorf("%v", err)}
		}
		msg, err := s.compose(n, r)
		if err != nil {
			return Result{Err: s.errorf("composing message: %v", err)}
		}
		ctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		ctx, span := smtpSpan(ctx, s.tracer, s.cfg.Smarthost)
		res := s.deliver(ctx, msg)
		endSMTP(span, res)
		return res
	})
}

// smtpFailure classifies an SMTP error: a reply code 4xx is temporary (retryable), 5xx
// permanent (not); without a reply, the network error decides (see classifyNetError).
func (s *emailSender) smtpFailure(ctx context.Context, step string, err error) Result {
	var te *textproto.Error
	if errors.As(err, &te) {
		return Result{
			Status:    te.Code,
			Retryable: te.Code >= 400 && te.Code < 500,
			Err:       s.errorf("%s: SMTP %d %s", step, te.Code, truncate(maxExcerpt, te.Msg)),
		}
	}
	retryable, what := classifyNetError(ctx, err)
	if what == "timeout" {
		what = fmt.Sprintf("timeout (%v)", s.timeout)
	}
	return Result{Retryable: retryable, Err: s.errorf("%s: %s: %v", step, what, err)}
}

// permanent is a failure another attempt would meet again: a configuration problem.
func (s *emailSender) permanent(format string, args ...any) Result {
	return Result{Err: s.errorf(format, args...)}
}

func (s *emailSender) deliver(ctx context.Context, msg []byte) Result {
	conn, err := s.dialer.DialContext(ctx, "tcp", s.cfg.Smarthost)
	if err != nil {
		return s.smtpFailure(ctx, "connect", err)
	}
	defer conn.Close()
	// net/smtp has no context: the connection's deadline is the attempt's, and a cancelled
	// attempt unblocks whatever is reading or writing.
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.cfg.TLS == TLSImplicit {
		tc := tls.Client(conn, s.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return s.smtpFailure(ctx, "TLS handshake", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return s.smtpFailure(ctx, "greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.helloName); err != nil {
		return s.smtpFailure(ctx, "hello", err)
	}
	if s.cfg.TLS == TLSStartTLS {
		ok, _ := c.Extension("STARTTLS")
		if !ok {
			_ = c.Quit()
			// Not retryable: sending in the clear was not allowed, and the server will not
			// start offering STARTTLS on its own.
			return s.permanent("server does not offer STARTTLS, which is required")
		}
		if err := c.StartTLS(s.tlsConfig); err != nil {
			return s.smtpFailure(ctx, "STARTTLS", err)
		}
	}
	if s.cfg.Username != "" {
		_, isTLS := c.TLSConnectionState()
		if !isTLS && !isLoopback(s.host) {
			return s.permanent("refusing to send the password without TLS to %s", s.host)
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			_ = c.Quit()
			return s.permanent("server does not offer AUTH, but a username is configured")
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host)); err != nil {
			return s.smtpFailure(ctx, "AUTH", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return s.smtpFailure(ctx, "MAIL FROM", err)
	}
	// One refused recipient fails the attempt: a retry sends to them all again.
	for _, a := range s.to {
		if err := c.Rcpt(a.Address); err != nil {
			return s.smtpFailure(ctx, "RCPT TO <"+a.Address+">", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return s.smtpFailure(ctx, "DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return s.smtpFailure(ctx, "DATA", err)
	}
	if err := w.Close(); err != nil {
		return s.smtpFailure(ctx, "DATA", err)
	}
	// The message is accepted; a failing QUIT changes nothing.
	_ = c.Quit()
	return Result{Status: 250}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// headerText keeps a header value on one line.
func headerText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// messageID is <n.ID@ticketpulse>, the ID reduced to characters a msg-id may hold.
func messageID(id string) string {
	clean := strings.Map(func(r rune) rune {
		if r > ' ' && r < 0x7f && !strings.ContainsRune(`()<>[]:;@\,"`, r) {
			return r
		}
		return '-'
	}, id)
	clean = strings.Trim(clean, ".")
	if clean == "" {
		clean = "notification"
	}
	return "<" + clean + "@ticketpulse>"
}

// compose writes the RFC 5322 message: multipart/alternative with the text and HTML parts,
// both UTF-8, quoted-printable.
func (s *emailSender) compose(n *Notification, r rendered) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	to := make([]string, len(s.to))
	for i, a := range s.to {
		to[i] = a.String()
	}
	hdr := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	hdr("From", s.from.String())
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", headerText(r.Title)))
	hdr("Date", s.now().Format(time.RFC1123Z))
	hdr("Message-ID", messageID(n.ID))
	hdr("MIME-Version", "1.0")
	// RFC 3834: machine-generated, so out-of-office replies are not sent back.
	hdr("Auto-Submitted", "auto-generated")
	hdr("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	buf.WriteString("\r\n")

	for _, part := range []struct{ ctype, body string }{
		{"text/plain; charset=utf-8", r.Text + "\n"},
		{"text/html; charset=utf-8", r.HTML},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
