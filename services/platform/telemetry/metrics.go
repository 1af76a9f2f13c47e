package telemetry

import (
	"context"
	"fmt"
	"net/http"
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
	"google.golang.org/grpc/credentials"
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
	// otlp is the push's exporter (OTLPFromEnv with Metrics); off unless an endpoint is set or
	// OTEL_METRICS_EXPORTER asks for otlp.
	otlp OTLP
	// interval between two pushes; 0 keeps the SDK's (OTEL_METRIC_EXPORT_INTERVAL, else 60 s).
	interval time.Duration
}

// metricsExportFromEnv reads the variables that decide whether and how metrics are pushed: the
// exporter settings every signal shares (OTLPFromEnv, the -otlp-endpoint flag as its fallback),
// OTEL_METRICS_EXPORTER (otlp, prometheus, none; a comma-separated list: /metrics is always
// served, so only otlp matters) and OTEL_METRIC_EXPORT_INTERVAL. A service started without any
// OTEL_ variable pushes nothing and opens no connection.
func metricsExportFromEnv(lookup Lookup, flagEndpoint string) (metricsExport, error) {
	var e metricsExport
	const exporterVar = "OTEL_METRICS_EXPORTER"
	exporter, asked := "", false // what OTLPFromEnv is told OTEL_METRICS_EXPORTER says
	if v, ok := lookup(exporterVar); ok && strings.TrimSpace(v) != "" {
		asked, exporter = true, "none"
		for _, name := range strings.Split(v, ",") {
			switch strings.TrimSpace(name) {
			case "otlp":
				exporter = "otlp"
			case "prometheus", "none":
			default:
				return e, fmt.Errorf("%s %q: want otlp, prometheus or none (a comma-separated list)", exporterVar, v)
			}
		}
	}
	otlp, err := OTLPFromEnv(func(k string) (string, bool) {
		if k == exporterVar {
			return exporter, asked
		}
		return lookup(k)
	}, Metrics, flagEndpoint)
	if err != nil {
		return e, err
	}
	e.otlp = otlp
	if v, ok := lookup("OTEL_METRIC_EXPORT_INTERVAL"); ok && strings.TrimSpace(v) != "" {
		ms, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || ms <= 0 {
			return e, fmt.Errorf("OTEL_METRIC_EXPORT_INTERVAL %q: want a positive number of milliseconds", v)
		}
		e.interval = time.Duration(ms) * time.Millisecond
	}
	return e, nil
}

// newMetricExporter makes the OTLP exporter o describes, as newTraceExporter does for spans.
func newMetricExporter(ctx context.Context, o OTLP) (sdkmetric.Exporter, error) {
	if o.Protocol == ProtocolHTTPProtobuf {
		opts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpoint(o.Endpoint), otlpmetrichttp.WithURLPath(o.URLPath),
			otlpmetrichttp.WithTimeout(o.Timeout), otlpmetrichttp.WithHeaders(o.Headers)}
		if o.Insecure {
			opts = append(opts, otlpmetrichttp.WithInsecure())
		} else {
			opts = append(opts, otlpmetrichttp.WithTLSClientConfig(o.TLS))
		}
		if o.Gzip {
			opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
		} else {
			opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.NoCompression))
		}
		exp, err := otlpmetrichttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp metrics exporter %s: %w", o.Endpoint, err)
		}
		return exp, nil
	}
	opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(o.Endpoint), otlpmetricgrpc.WithTimeout(o.Timeout),
		otlpmetricgrpc.WithHeaders(o.Headers)}
	if o.Insecure {
		opts = append(opts, otlpmetricgrpc.WithInsecure())
	} else {
		opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(o.TLS)))
	}
	if o.Gzip {
		opts = append(opts, otlpmetricgrpc.WithCompressor("gzip"))
	}
	exp, err := otlpmetricgrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp metrics exporter %s: %w", o.Endpoint, err)
	}
	return exp, nil
}

// newMeterProvider builds the meter provider: always read by Prometheus (the returned handler
// serves /metrics, with the Go runtime and process collectors), and pushed over OTLP when the
// environment or the flag asks for it.
func newMeterProvider(ctx context.Context, res *resource.Resource, lookup Lookup, flagEndpoint string) (*sdkmetric.MeterProvider, http.Handler, error) {
	e, err := metricsExportFromEnv(lookup, flagEndpoint)
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
	if e.otlp.Enabled {
		exp, err := newMetricExporter(ctx, e.otlp)
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
