package receiver

import (
	"context"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A chat request is a client span of the attempt's trace, its traceparent sent along; the span
// shows the URL's host only, never the secret path and query the request itself goes to.
func TestHTTPRequestIsTracedWithoutItsSecretURL(t *testing.T) {
	rec := newRecorder(t, nil)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	s, err := New(Config{Name: "ops", Kind: KindSlack, Slack: &ChatConfig{URL: rec.url("/services/T/B/secret-token?k=secret-q")}},
		Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, attempt := tp.Tracer("test").Start(context.Background(), "attempt")
	if res := s.Send(ctx, notification(1)); res.Err != nil {
		t.Fatal(res.Err)
	}
	attempt.End()
	reqs := rec.requests()
	if len(reqs) != 1 || reqs[0].Path != "/services/T/B/secret-token" {
		t.Fatalf("receiver got %+v, want one request to the real path", reqs)
	}
	ended := spans.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans, want the request's and the attempt's", len(ended))
	}
	client := ended[0]
	if client.SpanKind() != trace.SpanKindClient || client.Parent().SpanID() != attempt.SpanContext().SpanID() {
		t.Fatalf("span %q kind %v parent %v, want a client span below the attempt", client.Name(), client.SpanKind(), client.Parent())
	}
	want := "00-" + attempt.SpanContext().TraceID().String() + "-" + client.SpanContext().SpanID().String() + "-01"
	if got := reqs[0].Header.Get("Traceparent"); got != want {
		t.Errorf("traceparent %q, want the client span's %q", got, want)
	}
	shown := client.Name()
	for _, kv := range client.Attributes() {
		shown += " " + kv.Value.Emit()
	}
	if strings.Contains(shown, "secret") || !strings.Contains(shown, rec.srv.Listener.Addr().String()) {
		t.Errorf("span shows %q: want the host, never the secret path or query", shown)
	}
}

// An e-mail attempt is an SMTP client span of the attempt's trace naming the relay and the
// reply code; a failure marks it failed; the message never shows.
func TestSMTPSessionIsTraced(t *testing.T) {
	for _, tc := range []struct {
		name     string
		be       *smtpBackend
		wantCode string
		wantErr  bool
	}{
		{name: "delivered", be: &smtpBackend{}, wantCode: "250"},
		{name: "refused", be: &smtpBackend{mailErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "no"}},
			wantCode: "550", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startSMTP(t, tc.be, nil, nil)
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			s, err := New(Config{Name: "mail", Kind: KindEmail, Email: &EmailConfig{From: "a@x.example", To: []string{"b@x.example"},
				Smarthost: addr, TLS: TLSNone}}, Options{TracerProvider: tp})
			if err != nil {
				t.Fatal(err)
			}
			ctx, attempt := tp.Tracer("test").Start(context.Background(), "attempt")
			res := s.Send(ctx, notification(1))
			attempt.End()
			if (res.Err != nil) != tc.wantErr {
				t.Fatalf("Send = %+v", res)
			}
			ended := spans.Ended()
			if len(ended) != 2 {
				t.Fatalf("%d spans, want the session's and the attempt's", len(ended))
			}
			smtpSpan := ended[0]
			if smtpSpan.Name() != "SMTP "+addr || smtpSpan.SpanKind() != trace.SpanKindClient || smtpSpan.Parent().SpanID() != attempt.SpanContext().SpanID() {
				t.Fatalf("span %q kind %v parent %v, want SMTP %s, a client span below the attempt", smtpSpan.Name(), smtpSpan.SpanKind(), smtpSpan.Parent(), addr)
			}
			attrs := map[string]string{}
			for _, kv := range smtpSpan.Attributes() {
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
			if attrs["server.address"] != addr || attrs["smtp.reply_code"] != tc.wantCode {
				t.Errorf("attributes %v, want server.address %s and reply code %s", attrs, addr, tc.wantCode)
			}
			if failed := smtpSpan.Status().Code == codes.Error; failed != tc.wantErr {
				t.Errorf("span status %v, want failed = %t", smtpSpan.Status(), tc.wantErr)
			}
			for _, v := range append(attrsValues(attrs), smtpSpan.Status().Description) {
				if strings.Contains(v, "esc-1") || strings.Contains(v, "b@x.example") {
					t.Errorf("the span shows the message or its recipient: %q", v)
				}
			}
		})
	}
}

func attrsValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
