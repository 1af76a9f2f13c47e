package telemetry

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestOTLPFromEnv(t *testing.T) {
	tests := []struct {
		name string
		give map[string]string
		flag string
		want OTLP
	}{
		{name: "nothing set: off", give: nil, want: OTLP{Protocol: ProtocolGRPC, Timeout: DefaultOTLPTimeout}},
		{name: "flag host:port is plain gRPC", flag: "collector:4317",
			want: OTLP{Enabled: true, Protocol: ProtocolGRPC, Endpoint: "collector:4317", URLPath: "/v1/traces", Insecure: true, Timeout: DefaultOTLPTimeout}},
		{name: "general endpoint wins over the flag", flag: "flag:4317", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example:4317"},
			want: OTLP{Enabled: true, Protocol: ProtocolGRPC, Endpoint: "otel.example:4317", URLPath: "/v1/traces", Timeout: DefaultOTLPTimeout}},
		{name: "signal endpoint wins over the general one", give: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "https://general:4317", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4317"},
			want: OTLP{Enabled: true, Protocol: ProtocolGRPC, Endpoint: "traces:4317", URLPath: "/v1/traces", Insecure: true, Timeout: DefaultOTLPTimeout}},
		{name: "http base endpoint gets the signal path", give: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/otlp/", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			want: OTLP{Enabled: true, Protocol: ProtocolHTTPProtobuf, Endpoint: "collector:4318", URLPath: "/otlp/v1/traces", Insecure: true, Timeout: DefaultOTLPTimeout}},
		{name: "http signal endpoint used as is, default port", give: map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector/custom", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
			want: OTLP{Enabled: true, Protocol: ProtocolHTTPProtobuf, Endpoint: "collector:4318", URLPath: "/custom", Insecure: true, Timeout: DefaultOTLPTimeout}},
		{name: "host:port from the environment is TLS unless insecure", give: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
			want: OTLP{Enabled: true, Protocol: ProtocolGRPC, Endpoint: "collector:4317", URLPath: "/v1/traces", Insecure: true, Timeout: DefaultOTLPTimeout}},
		{name: "headers, timeout, gzip", give: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%3Dcret, x-team = ops ,",
			"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
			want: OTLP{Enabled: true, Protocol: ProtocolGRPC, Endpoint: "c:4317", URLPath: "/v1/traces", Insecure: true, Timeout: 2500 * time.Millisecond,
				Headers: map[string]string{"api-key": "s=cret", "x-team": "ops"}, Gzip: true}},
		{name: "exporter none keeps it off", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"},
			want: OTLP{Protocol: ProtocolGRPC, Endpoint: "c:4317", URLPath: "/v1/traces", Insecure: true, Timeout: DefaultOTLPTimeout}},
		{name: "sdk disabled keeps it off", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"},
			want: OTLP{Protocol: ProtocolGRPC, Endpoint: "c:4317", URLPath: "/v1/traces", Insecure: true, Timeout: DefaultOTLPTimeout}},
		{name: "exporter otlp without endpoint: local collector", give: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			want: OTLP{Enabled: true, Protocol: ProtocolHTTPProtobuf, Endpoint: "localhost:4318", URLPath: "/v1/traces", Insecure: true, Timeout: DefaultOTLPTimeout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OTLPFromEnv(env(tt.give), Traces, tt.flag)
			if err != nil {
				t.Fatal(err)
			}
			got.TLS = nil // checked in TestOTLPTLS
			if got.String() != tt.want.String() || got.Enabled != tt.want.Enabled || len(got.Headers) != len(tt.want.Headers) {
				t.Fatalf("got %s (enabled %t), want %s (enabled %t)", got, got.Enabled, tt.want, tt.want.Enabled)
			}
			for k, v := range tt.want.Headers {
				if got.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, got.Headers[k], v)
				}
				if strings.Contains(got.String(), v) {
					t.Errorf("String %q shows the value of header %s", got.String(), k)
				}
			}
		})
	}
}

func TestOTLPFromEnvRejects(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		give map[string]string
		flag string
		want string
	}{
		{name: "protocol", give: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			want: `OTEL_EXPORTER_OTLP_PROTOCOL "http/json": want grpc or http/protobuf`},
		{name: "signal protocol", give: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"},
			want: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL "udp": want grpc or http/protobuf`},
		{name: "exporter", give: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"},
			want: `OTEL_TRACES_EXPORTER "zipkin": want otlp or none`},
		{name: "sdk disabled", give: map[string]string{"OTEL_SDK_DISABLED": "yes"},
			want: `OTEL_SDK_DISABLED "yes": want true or false`},
		{name: "endpoint scheme", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://c:21"},
			want: `OTEL_EXPORTER_OTLP_ENDPOINT is not an http:// or https:// URL with a host and no user, query or fragment`},
		{name: "endpoint with a password is not echoed", give: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://u:hunter2@c:4317"},
			want: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is not an http:// or https:// URL with a host and no user, query or fragment`},
		{name: "grpc endpoint with a path", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317/v1/traces"},
			want: `OTEL_EXPORTER_OTLP_ENDPOINT "http://c:4317/v1/traces": a gRPC endpoint has no path`},
		{name: "flag without port", flag: "collector",
			want: `-otlp-endpoint "collector": want host:port or an http:// or https:// URL`},
		{name: "insecure", give: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4317", "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "maybe"},
			want: `OTEL_EXPORTER_OTLP_TRACES_INSECURE "maybe": want true or false`},
		{name: "header without =", give: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1,secretvalue"},
			want: `OTEL_EXPORTER_OTLP_HEADERS entry 2: want name=value with a header name of letters, digits and -`},
		{name: "header value not url-encoded is not echoed", give: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-key=s3cr%zz"},
			want: `OTEL_EXPORTER_OTLP_TRACES_HEADERS entry 1 (api-key): the value is not URL-encoded`},
		{name: "headers too long", give: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=" + strings.Repeat("x", 9000)},
			want: `OTEL_EXPORTER_OTLP_HEADERS is 9002 bytes: at most 8192`},
		{name: "too many headers", give: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": strings.Repeat("h=1,", 0) + manyHeaders(33)},
			want: `OTEL_EXPORTER_OTLP_HEADERS has 33 headers: at most 32`},
		{name: "timeout not a number", give: map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"},
			want: `OTEL_EXPORTER_OTLP_TIMEOUT "10s": want milliseconds, a whole number`},
		{name: "timeout too long", give: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "600000"},
			want: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT 600000: want 1 to 60000 milliseconds`},
		{name: "timeout zero", give: map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "0"},
			want: `OTEL_EXPORTER_OTLP_TIMEOUT 0: want 1 to 60000 milliseconds`},
		{name: "compression", give: map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
			want: `OTEL_EXPORTER_OTLP_COMPRESSION "zstd": want gzip or none`},
		{name: "ca missing", give: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": missing},
			want: `OTEL_EXPORTER_OTLP_CERTIFICATE "` + missing + `": no such file or directory`},
		{name: "ca not pem", give: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": notPEM},
			want: `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE "` + notPEM + `": no PEM certificate in it`},
		{name: "client cert without key", give: map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": notPEM},
			want: `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE "` + notPEM + `": needs OTEL_EXPORTER_OTLP_CLIENT_KEY as well`},
		{name: "client key without cert", give: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": notPEM},
			want: `OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY "` + notPEM + `": needs OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE as well`},
		{name: "client pair unreadable", give: map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": notPEM, "OTEL_EXPORTER_OTLP_CLIENT_KEY": notPEM},
			want: `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE "` + notPEM + `" with OTEL_EXPORTER_OTLP_CLIENT_KEY "` + notPEM + `": tls: failed to find any PEM data in certificate input`},
		{name: "two at once", give: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "x", "OTEL_EXPORTER_OTLP_COMPRESSION": "y"},
			want: "OTEL_EXPORTER_OTLP_PROTOCOL \"x\": want grpc or http/protobuf\nOTEL_EXPORTER_OTLP_COMPRESSION \"y\": want gzip or none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OTLPFromEnv(env(tt.give), Traces, tt.flag)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v\nwant  %s", err, tt.want)
			}
			for _, secret := range []string{"hunter2", "secretvalue", "s3cr"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

func manyHeaders(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("h" + strings.Repeat("x", i) + "=1")
	}
	return b.String()
}

func TestSamplerFromEnv(t *testing.T) {
	tests := []struct {
		give    map[string]string
		want    string
		wantErr string
	}{
		{give: nil, want: "parentbased_always_on"},
		{give: map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, want: "always_on"},
		{give: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, want: "always_off"},
		{give: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, want: "parentbased_always_off"},
		{give: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, want: "traceidratio(0.25)"},
		{give: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}, want: "parentbased_traceidratio(1)"},
		{give: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"},
			wantErr: `OTEL_TRACES_SAMPLER "jaeger_remote": want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio`},
		{give: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
			wantErr: `OTEL_TRACES_SAMPLER_ARG "1.5": want a ratio from 0 to 1`},
		{give: map[string]string{"OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
			wantErr: `OTEL_TRACES_SAMPLER_ARG: only the traceidratio samplers take a ratio, not always_on`},
	}
	for _, tt := range tests {
		t.Run(tt.want+tt.wantErr, func(t *testing.T) {
			cfg, err := TracesFromEnv(env(tt.give), "")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || cfg.SamplerName != tt.want {
				t.Fatalf("sampler %q (%v), want %q", cfg.SamplerName, err, tt.want)
			}
		})
	}
}

// otlpReceiver is a collector stand-in speaking OTLP/HTTP: it keeps the names of the spans it
// got, how many metric exports came, and the headers of the last export.
type otlpReceiver struct {
	mu            sync.Mutex
	spans         []string
	metricExports int
	headers       http.Header
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if req.URL.Path == "/v1/metrics" {
		var m colmetricspb.ExportMetricsServiceRequest
		if proto.Unmarshal(body, &m) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.metricExports++
		r.headers = req.Header.Clone()
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &msg) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.headers = req.Header.Clone()
	for _, rs := range msg.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, s.GetName())
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

func (r *otlpReceiver) got() ([]string, http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.spans...), r.headers
}

// Spans and metrics reach a collector over OTLP/HTTP with mutual TLS, the CA and the client
// certificate from the environment, with the configured header: both signals read the same
// variables.
func TestOTLPHTTPWithMutualTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	rcv := &otlpReceiver{}
	srv := httptest.NewUnstartedServer(rcv)
	srv.TLS = certs.ServerTLS(t, true)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	tel, err := Setup(context.Background(), "test", "", WithEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":           "https://" + srv.Listener.Addr().String(),
		"OTEL_EXPORTER_OTLP_PROTOCOL":           "http/protobuf",
		"OTEL_EXPORTER_OTLP_HEADERS":            "authorization=Bearer%20abc",
		"OTEL_EXPORTER_OTLP_CERTIFICATE":        certs.CA,
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": certs.ClientCert,
		"OTEL_EXPORTER_OTLP_CLIENT_KEY":         certs.ClientKey,
	})))
	if err != nil {
		t.Fatal(err)
	}
	if tel.Traces.OTLP.TLS == nil || len(tel.Traces.OTLP.TLS.Certificates) != 1 || tel.Traces.OTLP.TLS.MinVersion != tls.VersionTLS12 {
		t.Fatalf("TLS config %+v", tel.Traces.OTLP.TLS)
	}
	_, span := tel.Tracer.Start(context.Background(), "hello")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans, h := rcv.got()
	if len(spans) != 1 || spans[0] != "hello" {
		t.Fatalf("collector got spans %v, want [hello]", spans)
	}
	rcv.mu.Lock()
	metricExports := rcv.metricExports
	rcv.mu.Unlock()
	if metricExports == 0 {
		t.Error("collector got no metrics: the push did not follow the same variables")
	}
	if h.Get("Authorization") != "Bearer abc" {
		t.Errorf("collector got authorization %q", h.Get("Authorization"))
	}
}

// With no OTEL_* variable and no flag, nothing is exported, yet spans carry a valid, sampled
// context so it propagates to the next service.
func TestNothingExportedByDefault(t *testing.T) {
	tel, err := Setup(context.Background(), "test", "", WithEnv(env(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	if tel.Traces.OTLP.Enabled {
		t.Fatalf("exporting to %s with nothing set", tel.Traces.OTLP)
	}
	ctx, span := tel.Tracer.Start(context.Background(), "x")
	defer span.End()
	if sc := span.SpanContext(); !sc.IsValid() || !sc.IsSampled() || span.IsRecording() {
		t.Fatalf("span context %v, recording %t: want valid, sampled and not recording", sc, span.IsRecording())
	}
	_, child := tel.Tracer.Start(ctx, "y")
	if child.SpanContext().TraceID() != span.SpanContext().TraceID() || child.SpanContext().SpanID() == span.SpanContext().SpanID() {
		t.Errorf("child %v of %v: want the same trace, a span id of its own", child.SpanContext(), span.SpanContext())
	}
	_, root := tel.Tracer.Start(ctx, "z", trace.WithNewRoot())
	if root.SpanContext().TraceID() == span.SpanContext().TraceID() {
		t.Errorf("a new root kept its context's trace")
	}
	if Traceparent(context.Background()) != "" {
		t.Errorf("Traceparent without a span: %q, want empty", Traceparent(context.Background()))
	}
}

// Traceparent and SpanContextOf carry a recording span's context through a string.
func TestTraceparentRoundTrip(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	s := Traceparent(ctx)
	if back := SpanContextOf(s); !back.Equal(span.SpanContext().WithRemote(true)) {
		t.Errorf("SpanContextOf(%q) = %v, want %v", s, back, span.SpanContext())
	}
	if SpanContextOf("garbage").IsValid() || SpanContextOf("").IsValid() {
		t.Errorf("a malformed traceparent gave a valid span context")
	}
}

// A bad variable stops Setup with the error naming it.
func TestSetupRejectsBadEnv(t *testing.T) {
	_, err := Setup(context.Background(), "test", "", WithEnv(env(map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"})))
	const want = `OTEL_TRACES_SAMPLER "sometimes": want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

// A test's span processor gets every span, with nothing exported otherwise.
func TestWithSpanProcessor(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel, err := Setup(context.Background(), "test", "", WithEnv(env(nil)), WithSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Recording || tel.Traces.OTLP.Enabled {
		t.Fatalf("recording %t, exporting %s: want recording for the processor only", tel.Recording, tel.Traces.OTLP)
	}
	_, span := tel.Tracer.Start(context.Background(), "x")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rec.Ended(); len(got) != 1 || got[0].Name() != "x" || got[0].Resource().String() == "" {
		t.Fatalf("the processor got %v, want span x", got)
	}
}
