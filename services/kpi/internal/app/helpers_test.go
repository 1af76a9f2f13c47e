package app

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func marshal(ev *tpv1.TicketEvent) ([]byte, error) { return proto.Marshal(ev) }

// toProto converts the test's canonical JSON maps to the protobuf that ingest publishes.
func toProto(t *testing.T, m map[string]any) *tpv1.TicketEvent {
	t.Helper()
	at, err := time.Parse(time.RFC3339, m["occurred_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	actor := m["actor"].(map[string]any)
	ev := &tpv1.TicketEvent{
		Id: m["id"].(string), Tenant: "acme", Source: "generic", TicketId: m["ticket_id"].(string),
		Type:       tpv1.EventType(tpv1.EventType_value["EVENT_TYPE_"+strings.ToUpper(m["type"].(string))]),
		OccurredAt: timestamppb.New(at),
		Actor:      &tpv1.Actor{Id: actor["id"].(string), Kind: tpv1.ActorKind(tpv1.ActorKind_value["ACTOR_KIND_"+strings.ToUpper(actor["kind"].(string))])},
	}
	if v, ok := m["assignee_id"].(string); ok {
		ev.AssigneeId = v
	}
	if v, ok := m["team_id"].(string); ok {
		ev.TeamId = v
	}
	if v, ok := m["priority"].(string); ok {
		ev.Priority = tpv1.Priority(tpv1.Priority_value["PRIORITY_"+strings.ToUpper(v)])
	}
	if v, ok := m["status"].(string); ok {
		ev.Status = tpv1.TicketStatus(tpv1.TicketStatus_value["TICKET_STATUS_"+strings.ToUpper(v)])
	}
	if v, ok := m["public"].(bool); ok {
		ev.Public = proto.Bool(v)
	}
	if v, ok := m["satisfaction"].(map[string]any); ok {
		ev.Satisfaction = &tpv1.Satisfaction{Score: int32(v["score"].(int)), Scale: 5}
	}
	if v, ok := m["call"].(map[string]any); ok {
		str := func(k string) string { s, _ := v[k].(string); return s }
		wait, _ := v["wait_seconds"].(int)
		ev.Call = &tpv1.CallInfo{CallId: str("call_id"), TicketId: str("ticket_id"), AgentId: str("agent_id"), TeamId: str("team_id"),
			QueueId: str("queue_id"), WaitSeconds: float64(wait),
			Direction: tpv1.CallDirection(tpv1.CallDirection_value["CALL_DIRECTION_"+strings.ToUpper(str("direction"))])}
	}
	return ev
}

// bearer sends an API key with every call of a client the test dials itself (servicetest's
// DialAs does this for the services it starts). Tests speak plain text to loopback, so it does
// not insist on TLS as a real client would.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
