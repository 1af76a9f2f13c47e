package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// SecondsBuckets are the histogram bounds of every duration (unit "s"): 1 ms to 60 s, about
// 2.5 x apart, so one dashboard query reads any latency of any service.
var SecondsBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// SizeBuckets are the histogram bounds of every count of messages (unit "{message}"), such as a
// batch's size: 1 to 1000.
var SizeBuckets = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000}

// UnitMessages is the unit of a histogram of message counts, which SizeBuckets bounds.
const UnitMessages = "{message}"

// bucketViews give each histogram the bounds of its unit. The SDK's default bounds (0, 5, 10,
// 25 ... 10000) suit milliseconds, not seconds: a batch written in 40 ms fell in the first bucket.
// A view wins over an instrument's own advice, so every duration has the same bounds.
func bucketViews() []sdkmetric.View {
	return []sdkmetric.View{
		sdkmetric.NewView(sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: SecondsBuckets}}),
		sdkmetric.NewView(sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: UnitMessages},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: SizeBuckets}}),
	}
}

// metricsExport is what the standard OTEL_* variables ask of metrics.
type metricsExport struct {
	// otlp is whether metrics are pushed over OTLP as well as served on /metrics.
	otlp bool
	// protocol is grpc or http/protobuf.
	protocol string
	// flagEndpoint is -otlp-endpoint (host:port, plain gRPC), used when no OTEL_ variable names
	// an endpoint.
	flagEndpoint string
	// interval between two pushes; 0 keeps the SDK's (OTEL_METRIC_EXPORT_INTERVAL, else 60 s).
	interval time.Duration
}

// metricsExportFromEnv reads the variables that decide whether and how metrics are pushed:
// OTEL_METRICS_EXPORTER (otlp, prometheus, none; a comma-separated list), the endpoint
// (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT, else the flag) and the
// protocol (OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else grpc).
// Unlike the SDK's default, nothing is pushed unless an endpoint is set or OTEL_METRICS_EXPORTER
// says otlp: a service started without any OTEL_ variable opens no connection. The exporters
// read the rest (headers, certificates, insecure, timeout, compression) themselves.
func metricsExportFromEnv(lookup func(string) (string, bool), flagEndpoint string) (metricsExport, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	e := metricsExport{protocol: "grpc", flagEndpoint: flagEndpoint}
	endpoint := get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
	if endpoint == "" {
		endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	e.otlp = endpoint != "" || flagEndpoint != ""
	if v := get("OTEL_METRICS_EXPORTER"); v != "" {
		e.otlp = false
		for _, name := range strings.Split(v, ",") {
			switch strings.TrimSpace(name) {
			case "otlp":
				e.otlp = true
			case "prometheus", "none":
				// /metrics is always served; "none" only turns the push off.
			default:
				return e, fmt.Errorf("OTEL_METRICS_EXPORTER %q: want otlp, prometheus or none (a comma-separated list)", v)
			}
		}
	}
	proto, key := get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"), "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
	if proto == "" {
		proto, key = get("OTEL_EXPORTER_OTLP_PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	switch proto {
	case "":
	case "grpc", "http/protobuf":
		e.protocol = proto
	default:
		return e, fmt.Errorf("%s %q: want grpc or http/protobuf", key, proto)
	}
	if v := get("OTEL_METRIC_EXPORT_INTERVAL"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return e, fmt.Errorf("OTEL_METRIC_EXPORT_INTERVAL %q: want a positive number of milliseconds", v)
		}
		e.interval = time.Duration(ms) * time.Millisecond
	}
	return e, nil
}

// exporter builds the OTLP exporter e asks for.
func (e metricsExport) exporter(ctx context.Context) (sdkmetric.Exporter, error) {
	// The flag is a plain gRPC host:port, as for traces; an OTEL_ endpoint is read by the
	// exporter itself, with its scheme, headers and TLS settings.
	useFlag := e.flagEndpoint != "" && !envSet("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") && !envSet("OTEL_EXPORTER_OTLP_ENDPOINT")
	if e.protocol == "http/protobuf" {
		var opts []otlpmetrichttp.Option
		if useFlag {
			opts = append(opts, otlpmetrichttp.WithEndpoint(e.flagEndpoint), otlpmetrichttp.WithInsecure())
		}
		exp, err := otlpmetrichttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp metrics exporter (http/protobuf): %w", err)
		}
		return exp, nil
	}
	var opts []otlpmetricgrpc.Option
	if useFlag {
		opts = append(opts, otlpmetricgrpc.WithEndpoint(e.flagEndpoint), otlpmetricgrpc.WithInsecure())
	}
	exp, err := otlpmetricgrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp metrics exporter (grpc): %w", err)
	}
	return exp, nil
}

func envSet(k string) bool { return strings.TrimSpace(os.Getenv(k)) != "" }

// newMeterProvider builds the meter provider: always read by Prometheus (the returned handler
// serves /metrics, with the Go runtime and process collectors), and pushed over OTLP when the
// environment or the flag asks for it.
func newMeterProvider(ctx context.Context, res *resource.Resource, flagEndpoint string) (*sdkmetric.MeterProvider, http.Handler, error) {
	e, err := metricsExportFromEnv(os.LookupEnv, flagEndpoint)
	if err != nil {
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithReader(prom), sdkmetric.WithResource(res), sdkmetric.WithView(bucketViews()...)}
	if e.otlp {
		exp, err := e.exporter(ctx)
		if err != nil {
			return nil, nil, err
		}
		var ropts []sdkmetric.PeriodicReaderOption
		if e.interval > 0 {
			ropts = append(ropts, sdkmetric.WithInterval(e.interval))
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, ropts...)))
	}
	return sdkmetric.NewMeterProvider(opts...), promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
