package httpapi

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// EventsName counts the events JetStream acknowledged, from the events API and the webhooks
// alike, by tenant, source ("api" for the events API) and outcome: accepted (new) or duplicate
// (the stream held it already). ingest_events_total on /metrics. Only tenants of the tenants
// file reach it (the events API after its credential check, webhooks after the tenant lookup),
// so its series are bounded by that file.
const EventsName = "ingest.events"

// SourceAPI is the source label of events posted to the events API.
const SourceAPI = "api"

type eventCounter struct{ c metric.Int64Counter }

func newEventCounter(meter metric.Meter) (eventCounter, error) {
	c, err := meter.Int64Counter(EventsName, metric.WithUnit("{event}"),
		metric.WithDescription("Events acknowledged by JetStream, by tenant, source (api for the events API) and outcome: accepted (new) or duplicate."))
	return eventCounter{c}, err
}

// stored counts n events of tenant from source, duplicates of them already in the stream.
func (e eventCounter) stored(ctx context.Context, tenant, source string, n, duplicates int) {
	at := func(outcome string) metric.AddOption {
		return metric.WithAttributes(attribute.String("tenant", tenant), attribute.String("source", source), attribute.String("outcome", outcome))
	}
	e.c.Add(ctx, int64(n-duplicates), at("accepted"))
	e.c.Add(ctx, int64(duplicates), at("duplicate"))
}

// newPublishLatency is the histogram the events API and the webhooks share: one series of how
// long JetStream took to acknowledge what a request published.
func newPublishLatency(meter metric.Meter) (metric.Float64Histogram, error) {
	return meter.Float64Histogram("ingest.publish.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from the first publish of a request's events (events API or webhook) to their last acknowledgement."))
}
