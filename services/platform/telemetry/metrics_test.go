package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

func TestMetricsExportFromEnv(t *testing.T) {
	// pushed is what a test reads of the result: whether, how and where metrics are pushed.
	type pushed struct {
		on       bool
		protocol string
		endpoint string
		path     string
		insecure bool
		interval time.Duration
	}
	tests := []struct {
		name    string
		env     map[string]string
		flag    string
		want    pushed
		wantErr string
	}{
		{name: "nothing set pushes nothing", want: pushed{protocol: "grpc"}},
		{name: "flag alone pushes over grpc in plain text", flag: "127.0.0.1:4317",
			want: pushed{on: true, protocol: "grpc", endpoint: "127.0.0.1:4317", path: "/v1/metrics", insecure: true}},
		{name: "general endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
			want: pushed{on: true, protocol: "grpc", endpoint: "collector:4317", path: "/v1/metrics", insecure: true}},
		{name: "metrics endpoint and http protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://c:4318/v1/metrics", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			want: pushed{on: true, protocol: "http/protobuf", endpoint: "c:4318", path: "/v1/metrics"}},
		{name: "metrics protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf"},
			want: pushed{on: true, protocol: "http/protobuf", endpoint: "c:4318", path: "/v1/metrics", insecure: true}},
		{name: "an OTEL endpoint wins over the flag", flag: "127.0.0.1:4317", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317"},
			want: pushed{on: true, protocol: "grpc", endpoint: "collector:4317", path: "/v1/metrics"}},
		{name: "exporter none turns the push off", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_METRICS_EXPORTER": "none"},
			want: pushed{protocol: "grpc", endpoint: "c:4317", path: "/v1/metrics", insecure: true}},
		{name: "exporter prometheus only", flag: "127.0.0.1:4317", env: map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"},
			want: pushed{protocol: "grpc", endpoint: "127.0.0.1:4317", path: "/v1/metrics", insecure: true}},
		{name: "exporter otlp without endpoint uses the collector's default", env: map[string]string{"OTEL_METRICS_EXPORTER": "otlp, prometheus"},
			want: pushed{on: true, protocol: "grpc", endpoint: "localhost:4317", path: "/v1/metrics", insecure: true}},
		{name: "SDK disabled", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"},
			want: pushed{protocol: "grpc", endpoint: "c:4317", path: "/v1/metrics", insecure: true}},
		{name: "interval", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_METRIC_EXPORT_INTERVAL": "15000"},
			want: pushed{on: true, protocol: "grpc", endpoint: "c:4317", path: "/v1/metrics", insecure: true, interval: 15 * time.Second}},
		{name: "unknown exporter", env: map[string]string{"OTEL_METRICS_EXPORTER": "console"},
			wantErr: `OTEL_METRICS_EXPORTER "console": want otlp, prometheus or none (a comma-separated list)`},
		{name: "unknown protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL "http/json": want grpc or http/protobuf`},
		{name: "unknown metrics protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "udp"},
			wantErr: `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL "udp": want grpc or http/protobuf`},
		{name: "bad metrics timeout", env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "soon"},
			wantErr: `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT "soon": want milliseconds, a whole number`},
		{name: "interval not a number", env: map[string]string{"OTEL_METRIC_EXPORT_INTERVAL": "15s"},
			wantErr: `OTEL_METRIC_EXPORT_INTERVAL "15s": want a positive number of milliseconds`},
		{name: "interval zero", env: map[string]string{"OTEL_METRIC_EXPORT_INTERVAL": "0"},
			wantErr: `OTEL_METRIC_EXPORT_INTERVAL "0": want a positive number of milliseconds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			e, err := metricsExportFromEnv(lookup, tt.flag)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := pushed{on: e.otlp.Enabled, protocol: e.otlp.Protocol, endpoint: e.otlp.Endpoint, path: e.otlp.URLPath,
				insecure: e.otlp.Insecure, interval: e.interval}
			if got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

// clearOTELEnv keeps the machine's own OTEL_ variables out of a test.
func clearOTELEnv(t *testing.T) {
	for _, k := range []string{"OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_METRIC_EXPORT_INTERVAL",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_METRICS_INSECURE"} {
		t.Setenv(k, "")
	}
}

func TestSetupRejectsBadMetricsEnv(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	_, err := Setup(context.Background(), "test", "")
	if err == nil || err.Error() != `OTEL_EXPORTER_OTLP_PROTOCOL "http/json": want grpc or http/protobuf` {
		t.Fatalf("Setup error %v", err)
	}
}

// Every duration has the bounds 1 ms to 60 s and every message count 1 to 1000, whatever the
// instrument advised; other histograms keep their own.
func TestHistogramBuckets(t *testing.T) {
	clearOTELEnv(t)
	mp, h, err := newMeterProvider(context.Background(), resource.Empty(), os.LookupEnv, "")
	if err != nil {
		t.Fatal(err)
	}
	defer mp.Shutdown(context.Background())
	m := mp.Meter("test")
	secs, _ := m.Float64Histogram("write_seconds", metric.WithUnit("s"))
	advised, _ := m.Float64Histogram("advised_seconds", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.5, 5))
	sizes, _ := m.Int64Histogram("batch_size", metric.WithUnit(UnitMessages))
	other, _ := m.Float64Histogram("ratio", metric.WithExplicitBucketBoundaries(0.5, 0.9))
	ctx := context.Background()
	secs.Record(ctx, 0.04)
	advised.Record(ctx, 0.04)
	sizes.Record(ctx, 64)
	other.Record(ctx, 0.7)

	page := scrape(t, h)
	seconds := []string{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"}
	for name, want := range map[string][]string{
		"write_seconds":   seconds,
		"advised_seconds": seconds,
		"batch_size":      {"1", "2", "5", "10", "25", "50", "100", "250", "500", "1000", "+Inf"},
		"ratio":           {"0.5", "0.9", "+Inf"},
	} {
		if got := bucketBounds(page, name); !slices.Equal(got, want) {
			t.Errorf("%s buckets %v; want %v", name, got, want)
		}
	}
	// 0.04 s lands in the 0.05 bucket, not the first one.
	if !strings.Contains(page, `write_seconds_bucket{le="0.025"} 0`) || !strings.Contains(page, `write_seconds_bucket{le="0.05"} 1`) {
		t.Errorf("0.04 s not counted between 0.025 and 0.05:\n%s", page)
	}
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// bucketBounds lists the le values of name's buckets in page, in order.
func bucketBounds(page, name string) []string {
	var out []string
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, name+"_bucket{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `le="`)
		le, _, _ := strings.Cut(rest, `"`)
		out = append(out, le)
	}
	return out
}

// receivedMetrics collects the names of the metrics an OTLP receiver got.
type receivedMetrics struct {
	mu    sync.Mutex
	names map[string]bool
	got   chan struct{}
}

func newReceived() *receivedMetrics {
	return &receivedMetrics{names: map[string]bool{}, got: make(chan struct{}, 100)}
}

func (r *receivedMetrics) add(req *collmetrics.ExportMetricsServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				r.names[m.GetName()] = true
				if h := m.GetHistogram(); h != nil && len(h.GetDataPoints()) > 0 {
					r.names[m.GetName()+":bounds="+boundsString(h.GetDataPoints()[0])] = true
				}
			}
		}
	}
	r.got <- struct{}{}
}

func boundsString(dp *metricspb.HistogramDataPoint) string {
	var b strings.Builder
	for i, v := range dp.GetExplicitBounds() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return b.String()
}

type grpcReceiver struct {
	collmetrics.UnimplementedMetricsServiceServer
	r *receivedMetrics
}

func (g grpcReceiver) Export(_ context.Context, req *collmetrics.ExportMetricsServiceRequest) (*collmetrics.ExportMetricsServiceResponse, error) {
	g.r.add(req)
	return &collmetrics.ExportMetricsServiceResponse{}, nil
}

// Metrics reach an OTLP receiver over either protocol, with the same bounds /metrics shows.
func TestOTLPMetricsPush(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T, r *receivedMetrics) (env map[string]string, flag string)
	}{
		{name: "grpc by OTEL_EXPORTER_OTLP_ENDPOINT", start: func(t *testing.T, r *receivedMetrics) (map[string]string, string) {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + startGRPCReceiver(t, r)}, ""
		}},
		{name: "grpc by -otlp-endpoint", start: func(t *testing.T, r *receivedMetrics) (map[string]string, string) {
			return nil, startGRPCReceiver(t, r)
		}},
		{name: "http/protobuf by OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", start: func(t *testing.T, r *receivedMetrics) (map[string]string, string) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				body, _ := io.ReadAll(req.Body)
				var msg collmetrics.ExportMetricsServiceRequest
				if req.URL.Path != "/v1/metrics" || proto.Unmarshal(body, &msg) != nil {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
				r.add(&msg)
				w.Header().Set("Content-Type", "application/x-protobuf")
			}))
			t.Cleanup(srv.Close)
			return map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": srv.URL + "/v1/metrics", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTELEnv(t)
			r := newReceived()
			env, flag := tt.start(t, r)
			for k, v := range env {
				t.Setenv(k, v)
			}
			t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
			mp, _, err := newMeterProvider(context.Background(), resource.Empty(), os.LookupEnv, flag)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := mp.Meter("test").Float64Histogram("push_seconds", metric.WithUnit("s"))
			h.Record(context.Background(), 0.2)
			select {
			case <-r.got:
			case <-time.After(10 * time.Second):
				t.Fatal("no metrics pushed in 10 s")
			}
			if err := mp.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			want := "push_seconds:bounds=0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60"
			if !r.names["push_seconds"] || !r.names[want] {
				t.Errorf("received %v; want push_seconds with %s", r.names, want)
			}
		})
	}
}

func startGRPCReceiver(t *testing.T, r *receivedMetrics) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	collmetrics.RegisterMetricsServiceServer(s, grpcReceiver{r: r})
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}
