package e2e

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// span is what the collector stand-in keeps of an exported span.
type span struct {
	Service, Name, Kind string
	Trace, ID, Parent   string
	Links               []spanRef
	Attrs               map[string]string
}

type spanRef struct{ Trace, ID string }

// otlpCollector is a collector stand-in: an OTLP/HTTP (protobuf) receiver on loopback that
// keeps every span it gets, or with discard only counts the exports and their bytes (decoding
// them would take the CPU a benchmark measures the services with). The services push their
// metrics to the same endpoint: those exports are checked and answered, not kept.
type otlpCollector struct {
	srv            *httptest.Server
	discard        bool
	exports, bytes atomic.Int64
	mu             sync.Mutex
	spans          []span
}

func newOTLPCollector(t testing.TB, discard bool) *otlpCollector {
	t.Helper()
	c := &otlpCollector{discard: discard}
	c.srv = httptest.NewServer(c)
	t.Cleanup(c.srv.Close)
	return c
}

// env is what points a service's traces at the collector, exported every 100 ms.
func (c *otlpCollector) env() []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + c.srv.URL, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_TRACES_SAMPLER=always_on"}
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err == nil && r.URL.Path == "/v1/metrics" {
		if proto.Unmarshal(body, &colmetricpb.ExportMetricsServiceRequest{}) != nil {
			http.Error(w, "not an OTLP metrics export", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
		_, _ = w.Write(out)
		return
	}
	if c.discard && err == nil && r.URL.Path == "/v1/traces" {
		c.exports.Add(1)
		c.bytes.Add(int64(len(body)))
		w.Header().Set("Content-Type", "application/x-protobuf")
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	var got []span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := span{Service: service, Name: s.GetName(), Kind: s.GetKind().String(), Trace: hex.EncodeToString(s.GetTraceId()),
					ID: hex.EncodeToString(s.GetSpanId()), Parent: hex.EncodeToString(s.GetParentSpanId()), Attrs: map[string]string{}}
				for _, l := range s.GetLinks() {
					sp.Links = append(sp.Links, spanRef{Trace: hex.EncodeToString(l.GetTraceId()), ID: hex.EncodeToString(l.GetSpanId())})
				}
				for _, kv := range s.GetAttributes() {
					v := kv.GetValue()
					switch {
					case v.GetStringValue() != "":
						sp.Attrs[kv.GetKey()] = v.GetStringValue()
					default:
						sp.Attrs[kv.GetKey()] = v.String()
					}
				}
				got = append(got, sp)
			}
		}
	}
	c.exports.Add(1)
	c.bytes.Add(int64(len(body)))
	c.mu.Lock()
	c.spans = append(c.spans, got...)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// trace returns the spans of one trace received so far.
func (c *otlpCollector) trace(id string) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, s := range c.spans {
		if s.Trace == id {
			out = append(out, s)
		}
	}
	return out
}
