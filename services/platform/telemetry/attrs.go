package telemetry

import "go.opentelemetry.io/otel/attribute"

// Span attribute keys every service uses for what an operator filters traces by; the same words
// as the log keys. Values are ids and names, never message bodies or secrets.
const (
	AttrTenant    = attribute.Key("tenant")
	AttrSource    = attribute.Key("source")
	AttrEventType = attribute.Key("event_type")
	AttrEventID   = attribute.Key("event_id")
	AttrTicket    = attribute.Key("ticket_id")
	AttrRule      = attribute.Key("rule")
	AttrReceiver  = attribute.Key("receiver")
)

// Messaging attributes of the OpenTelemetry messaging conventions, for NATS JetStream.
var (
	MessagingNATS = attribute.String("messaging.system", "nats")
)

// Messaging attribute keys.
const (
	MessagingOperation   = attribute.Key("messaging.operation.type")
	MessagingDestination = attribute.Key("messaging.destination.name")
	MessagingConsumer    = attribute.Key("messaging.consumer.group.name")
	MessagingBatchCount  = attribute.Key("messaging.batch.message_count")
)
