package receiver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/ticketpulse/ticketpulse/services/platform/tlsconf/tlstest"
)

// smtpBackend is a real SMTP server's backend that records what it accepts.
type smtpBackend struct {
	user, pass string // AUTH PLAIN is offered and required when user is set
	mailErr    error  // answer to MAIL FROM, when set

	mu    sync.Mutex
	msgs  []smtpMessage
	auths int // AUTH attempts
}

type smtpMessage struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool
	AuthUser string
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{b: b, c: c}, nil
}

func (b *smtpBackend) messages() []smtpMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]smtpMessage(nil), b.msgs...)
}

type smtpSession struct {
	b    *smtpBackend
	c    *smtp.Conn
	user string
	cur  smtpMessage
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.b.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	s.b.mu.Lock()
	s.b.auths++
	s.b.mu.Unlock()
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != s.b.user || password != s.b.pass {
			return smtp.ErrAuthFailed // 535 5.7.8
		}
		s.user = username
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	if s.b.mailErr != nil {
		return s.b.mailErr
	}
	s.cur = smtpMessage{From: from, AuthUser: s.user}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	_, s.cur.TLS = s.c.TLSConnectionState()
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.cur = smtpMessage{} }
func (s *smtpSession) Logout() error { return nil }

// startSMTP serves be on 127.0.0.1: STARTTLS offered with starttls, TLS from the first byte
// with implicit.
func startSMTP(t *testing.T, be *smtpBackend, starttls, implicit *tls.Config) string {
	t.Helper()
	s := smtp.NewServer(be)
	s.Domain = "relay.test"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.TLSConfig = starttls
	s.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if implicit != nil {
		ln = tls.NewListener(ln, implicit)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return addr
}

// selfSigned makes a server certificate for 127.0.0.1 and localhost, and a pool trusting the
// CA that signed it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	ca := tlstest.NewCA(t, "ticketpulse test relay CA")
	return &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS(t)}}, ca.Pool()
}

// dialFunc dials wherever the test says, whatever the address.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

func TestEmail(t *testing.T) {
	serverTLS, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	type want struct {
		ok        bool
		status    int
		retryable bool
		errHas    string
		tls       bool
		authUser  string
		authTries int
	}
	for _, tc := range []struct {
		name      string
		be        *smtpBackend
		starttls  bool // server offers STARTTLS
		implicit  bool // server speaks TLS from the first byte
		cfg       EmailConfig
		trust     bool   // client trusts the server's certificate
		smarthost string // instead of the server's address (dialled there all the same)
		want      want
	}{
		{
			name: "plain to loopback", be: &smtpBackend{},
			cfg:  EmailConfig{TLS: TLSNone},
			want: want{ok: true, status: 250},
		},
		{
			name: "STARTTLS and AUTH PLAIN", be: &smtpBackend{user: "notify", pass: "s3cret"}, starttls: true, trust: true,
			cfg:  EmailConfig{TLS: TLSStartTLS, Username: "notify", Password: "s3cret"},
			want: want{ok: true, status: 250, tls: true, authUser: "notify", authTries: 1},
		},
		{
			name: "wrong password", be: &smtpBackend{user: "notify", pass: "s3cret"}, starttls: true, trust: true,
			cfg:  EmailConfig{TLS: TLSStartTLS, Username: "notify", Password: "wrong"},
			want: want{status: 535, errHas: "AUTH: SMTP 535", authTries: 1},
		},
		{
			name: "temporary failure", be: &smtpBackend{mailErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}},
			cfg:  EmailConfig{TLS: TLSNone},
			want: want{status: 451, retryable: true, errHas: "MAIL FROM: SMTP 451"},
		},
		{
			name: "permanent failure", be: &smtpBackend{mailErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender rejected"}},
			cfg:  EmailConfig{TLS: TLSNone},
			want: want{status: 550, errHas: "sender rejected"},
		},
		{
			name: "STARTTLS required but not offered", be: &smtpBackend{},
			cfg:  EmailConfig{TLS: TLSStartTLS},
			want: want{errHas: "does not offer STARTTLS"},
		},
		{
			name: "untrusted certificate", be: &smtpBackend{}, starttls: true,
			cfg:  EmailConfig{TLS: TLSStartTLS},
			want: want{errHas: "TLS certificate"},
		},
		{
			name: "untrusted certificate, verification skipped", be: &smtpBackend{}, starttls: true,
			cfg:  EmailConfig{TLS: TLSStartTLS, InsecureSkipVerify: true},
			want: want{ok: true, status: 250, tls: true},
		},
		{
			name: "implicit TLS and AUTH PLAIN", be: &smtpBackend{user: "notify", pass: "s3cret"}, implicit: true, trust: true,
			cfg:  EmailConfig{TLS: TLSImplicit, Username: "notify", Password: "s3cret"},
			want: want{ok: true, status: 250, tls: true, authUser: "notify", authTries: 1},
		},
		{
			name: "password in the clear to a remote host", be: &smtpBackend{user: "notify", pass: "s3cret"},
			cfg: EmailConfig{TLS: TLSNone, Username: "notify", Password: "s3cret"}, smarthost: "relay.test:25",
			want: want{errHas: "without TLS"},
		},
		{
			name: "connection refused", smarthost: closedAddr,
			cfg:  EmailConfig{TLS: TLSNone},
			want: want{retryable: true, errHas: "connect: network"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := closedAddr
			if tc.be != nil {
				var starttls, implicit *tls.Config
				if tc.starttls {
					starttls = serverTLS
				}
				if tc.implicit {
					implicit = serverTLS
				}
				addr = startSMTP(t, tc.be, starttls, implicit)
			}
			cfg := tc.cfg
			cfg.From = "Ticketpulse <notify@ticketpulse.example>"
			cfg.To = []string{"oncall@acme.example", "Lead Ünal <lead@acme.example>"}
			cfg.Smarthost = addr
			opts := Options{Now: (&clock{t: t0}).Now, HelloName: "notify.test"}
			if tc.smarthost != "" {
				cfg.Smarthost = tc.smarthost
				opts.Dialer = dialFunc(func(ctx context.Context, network, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				})
			}
			if tc.trust {
				opts.RootCAs = pool
			}
			s, err := New(Config{Name: "mail", Kind: KindEmail, Email: &cfg, Limits: Limits{Timeout: 5 * time.Second}}, opts)
			if err != nil {
				t.Fatal(err)
			}
			n := notification(2)
			res := s.Send(context.Background(), n)
			t.Logf("%+v", res)
			if (res.Err == nil) != tc.want.ok || res.Status != tc.want.status || res.Retryable != tc.want.retryable || res.Gone {
				t.Fatalf("Send = %+v, want %+v", res, tc.want)
			}
			if tc.want.errHas != "" && !strings.Contains(res.Err.Error(), tc.want.errHas) {
				t.Errorf("error %q lacks %q", res.Err, tc.want.errHas)
			}
			if res.Latency <= 0 {
				t.Errorf("latency %v", res.Latency)
			}
			if tc.be == nil {
				return
			}
			tc.be.mu.Lock()
			auths := tc.be.auths
			tc.be.mu.Unlock()
			if auths != tc.want.authTries {
				t.Errorf("%d AUTH attempts, want %d", auths, tc.want.authTries)
			}
			msgs := tc.be.messages()
			if !tc.want.ok {
				if len(msgs) != 0 {
					t.Errorf("%d messages accepted", len(msgs))
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			m := msgs[0]
			if m.From != "notify@ticketpulse.example" || strings.Join(m.To, ",") != "oncall@acme.example,lead@acme.example" {
				t.Errorf("envelope from %q to %q", m.From, m.To)
			}
			if m.TLS != tc.want.tls || m.AuthUser != tc.want.authUser {
				t.Errorf("TLS %v, user %q; want %v, %q", m.TLS, m.AuthUser, tc.want.tls, tc.want.authUser)
			}
			checkMessage(t, m.Data, n)
		})
	}
}

// checkMessage parses a received message as a mail client would.
func checkMessage(t *testing.T, data []byte, n *Notification) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("reading message: %v\n%s", err, data)
	}
	h := msg.Header
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if subject != "[CRITICAL] 2 escalations · acme · billing" {
		t.Errorf("Subject = %q (raw %q)", subject, h.Get("Subject"))
	}
	if h.Get("Subject") == subject {
		t.Error("non-ASCII subject sent unencoded")
	}
	if got := h.Get("Message-ID"); got != "<ntf-0001@ticketpulse>" {
		t.Errorf("Message-ID = %q", got)
	}
	if date, err := h.Date(); err != nil || !date.Equal(t0.Add(time.Second)) {
		t.Errorf("Date = %v, %v", date, err)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "notify@ticketpulse.example" || from[0].Name != "Ticketpulse" {
		t.Errorf("From = %v, %v", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[1].Name != "Lead Ünal" || to[1].Address != "lead@acme.example" {
		t.Errorf("To = %v, %v", to, err)
	}
	if h.Get("MIME-Version") != "1.0" {
		t.Errorf("MIME-Version = %q", h.Get("MIME-Version"))
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, %v", h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if cte := p.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
			t.Errorf("part %d: Content-Transfer-Encoding = %q", len(parts), cte)
		}
		raw, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\r\n") {
			if len(line) > 76 {
				t.Errorf("part %d: line of %d characters", len(parts), len(line))
			}
		}
		body, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p.Header.Get("Content-Type")+"\n"+string(body))
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts", len(parts))
	}
	wantText := "text/plain; charset=utf-8\n" +
		"TRIGGERED sla-first-response · ticket T-77 · level 1 → team-lead: First reply overdue on “Refund not received”\r\n" +
		"    target=1h0m0s elapsed=1h5m0s\r\n" +
		"TRIGGERED sla-first-response · ticket T-78 · level 1 → team-lead: First reply overdue on “Refund not received”\r\n" +
		"    target=1h0m0s elapsed=1h5m0s\r\n"
	if parts[0] != wantText {
		t.Errorf("text part =\n%q\nwant\n%q", parts[0], wantText)
	}
	if !strings.HasPrefix(parts[1], "text/html; charset=utf-8\n<!DOCTYPE html>") {
		t.Errorf("html part = %.80q", parts[1])
	}
	for _, s := range []string{"<table", "<td>ticket T-78</td>", "target=1h0m0s", "notification " + n.ID} {
		if !strings.Contains(parts[1], s) {
			t.Errorf("html part lacks %q", s)
		}
	}
}

func TestEmailTimeout(t *testing.T) {
	// A server that accepts and never greets.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	s, err := New(Config{Name: "mail", Kind: KindEmail, Limits: Limits{Timeout: 300 * time.Millisecond},
		Email: &EmailConfig{From: "a@x.example", To: []string{"b@x.example"}, Smarthost: ln.Addr().String(), TLS: TLSNone}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := s.Send(context.Background(), notification(1))
	took := time.Since(start)
	if res.Err == nil || !res.Retryable || !strings.Contains(res.Err.Error(), "timeout") {
		t.Fatalf("Send = %+v", res)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}
