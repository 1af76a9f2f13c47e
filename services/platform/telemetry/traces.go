package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"
)

// TraceConfig is what the environment says about traces: the exporter and the sampler.
type TraceConfig struct {
	OTLP    OTLP
	Sampler sdktrace.Sampler
	// SamplerName is OTEL_TRACES_SAMPLER's value (or the default), for logs.
	SamplerName string
}

// TracesFromEnv reads the trace exporter (OTLPFromEnv with Traces) and the sampler
// (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG) through lookup. Every value that cannot work
// is an error naming its variable.
func TracesFromEnv(lookup Lookup, flagEndpoint string) (TraceConfig, error) {
	o, oerr := OTLPFromEnv(lookup, Traces, flagEndpoint)
	name, s, serr := samplerFromEnv(lookup)
	if err := errors.Join(oerr, serr); err != nil {
		return TraceConfig{}, err
	}
	return TraceConfig{OTLP: o, Sampler: s, SamplerName: name}, nil
}

// samplerFromEnv is the sampler OTEL_TRACES_SAMPLER names, parentbased_always_on by default: a
// trace started upstream is sampled as upstream decided, so one chain is whole or absent.
func samplerFromEnv(lookup Lookup) (string, sdktrace.Sampler, error) {
	name := "parentbased_always_on"
	if v, ok := lookup("OTEL_TRACES_SAMPLER"); ok && strings.TrimSpace(v) != "" {
		name = strings.TrimSpace(v)
	}
	ratio := 1.0
	argSet := false
	if v, ok := lookup("OTEL_TRACES_SAMPLER_ARG"); ok && strings.TrimSpace(v) != "" {
		r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || r < 0 || r > 1 {
			return "", nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG %q: want a ratio from 0 to 1", v)
		}
		ratio, argSet = r, true
	}
	var s sdktrace.Sampler
	switch name {
	case "always_on":
		s = sdktrace.AlwaysSample()
	case "always_off":
		s = sdktrace.NeverSample()
	case "traceidratio":
		s = sdktrace.TraceIDRatioBased(ratio)
	case "parentbased_always_on":
		s = sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "parentbased_always_off":
		s = sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		s = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	default:
		return "", nil, fmt.Errorf("OTEL_TRACES_SAMPLER %q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
	}
	if argSet && !strings.HasSuffix(name, "traceidratio") {
		return "", nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: only the traceidratio samplers take a ratio, not %s", name)
	}
	if strings.HasSuffix(name, "traceidratio") {
		name += "(" + strconv.FormatFloat(ratio, 'g', -1, 64) + ")"
	}
	return name, s, nil
}

// newTracerProvider builds the trace provider: spans are exported only when cfg.OTLP is enabled,
// and also handed to the extra processors (tests). With neither, spans record nothing but still
// carry trace context between services (propagatingProvider), at next to no cost.
func newTracerProvider(ctx context.Context, res *resource.Resource, cfg TraceConfig, extra []sdktrace.SpanProcessor) (trace.TracerProvider, func(context.Context) error, error) {
	if !cfg.OTLP.Enabled && len(extra) == 0 {
		return propagatingProvider{}, func(context.Context) error { return nil }, nil
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(cfg.Sampler)}
	if cfg.OTLP.Enabled {
		exp, err := newTraceExporter(ctx, cfg.OTLP)
		if err != nil {
			return nil, nil, err
		}
		// The batcher's queue (2048 spans) and batch (512) are bounded; a full queue drops
		// spans rather than slowing the service.
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	for _, p := range extra {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return tp, tp.Shutdown, nil
}

// newTraceExporter makes the OTLP exporter o describes. It connects lazily: a collector that is
// down costs dropped spans, never a failed start.
func newTraceExporter(ctx context.Context, o OTLP) (*otlptrace.Exporter, error) {
	var client otlptrace.Client
	switch o.Protocol {
	case ProtocolHTTPProtobuf:
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(o.Endpoint), otlptracehttp.WithURLPath(o.URLPath),
			otlptracehttp.WithTimeout(o.Timeout), otlptracehttp.WithHeaders(o.Headers)}
		if o.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		} else {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(o.TLS))
		}
		if o.Gzip {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		} else {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
		}
		client = otlptracehttp.NewClient(opts...)
	default:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(o.Endpoint), otlptracegrpc.WithTimeout(o.Timeout),
			otlptracegrpc.WithHeaders(o.Headers)}
		if o.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(o.TLS)))
		}
		if o.Gzip {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		client = otlptracegrpc.NewClient(opts...)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter %s: %w", o.Endpoint, err)
	}
	return exp, nil
}
