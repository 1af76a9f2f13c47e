package eventcodec

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func ev(tenant, source, id string, typ tpv1.EventType) *tpv1.TicketEvent {
	return &tpv1.TicketEvent{
		Id: id, Tenant: tenant, Source: source, TicketId: "T-1", Type: typ,
		OccurredAt: timestamppb.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)),
		Actor:      &tpv1.Actor{Kind: tpv1.ActorKind_ACTOR_KIND_SYSTEM},
	}
}

func TestSubjectAndMsgID(t *testing.T) {
	tests := []struct {
		name        string
		give        *tpv1.TicketEvent
		wantSubject string
		wantMsgID   string
	}{
		{
			name:        "plain",
			give:        ev("acme", "generic", "evt-1", tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE),
			wantSubject: "tickets.acme.agent_message", wantMsgID: "acme/generic/evt-1",
		},
		{
			name:        "id with subject characters stays out of the subject",
			give:        ev("globex", "zendesk", "a.b*>/ü", tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED),
			wantSubject: "tickets.globex.satisfaction_rated", wantMsgID: "globex/zendesk/a.b*>/ü",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Subject(tt.give); got != tt.wantSubject {
				t.Errorf("Subject = %q; want %q", got, tt.wantSubject)
			}
			if got := MsgID(tt.give); got != tt.wantMsgID {
				t.Errorf("MsgID = %q; want %q", got, tt.wantMsgID)
			}
		})
	}
}

func TestWords(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"type", TypeWord(tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED), "satisfaction_rated"},
		{"type in subjects", TypeWord(tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE), "agent_message"},
		{"unspecified type", TypeWord(tpv1.EventType_EVENT_TYPE_UNSPECIFIED), ""},
		{"unknown type", TypeWord(tpv1.EventType(999)), ""},
		{"actor", ActorKinds.Word(tpv1.ActorKind_ACTOR_KIND_AUTOMATION), "automation"},
		{"priority", Priorities.Word(tpv1.Priority_PRIORITY_URGENT), "urgent"},
		{"status", Statuses.Word(tpv1.TicketStatus_TICKET_STATUS_ON_HOLD), "on_hold"},
		{"types in proto order", strings.Join(EventTypes.List(), ","),
			"ticket_created,ticket_assigned,agent_message,customer_message,status_changed,priority_changed,satisfaction_rated,qa_scored,call_offered,call_answered,call_abandoned,call_ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	for _, w := range EventTypes.List() {
		v, ok := EventTypes.Value(w)
		if !ok || TypeWord(v) != w {
			t.Errorf("word %q reads back as %v (%v)", w, v, ok)
		}
	}
	if _, ok := EventTypes.Value("unspecified"); ok {
		t.Error(`"unspecified" is a word`)
	}
	EventTypes.List()[0] = "changed"
	if EventTypes.List()[0] != "ticket_created" {
		t.Error("List hands out its own slice")
	}
}

func TestEncodeRejectsUnknownType(t *testing.T) {
	_, err := Encode(context.Background(), ev("acme", "generic", "evt-1", tpv1.EventType_EVENT_TYPE_UNSPECIFIED))
	if err == nil || !strings.Contains(err.Error(), "no subject for type") {
		t.Fatalf("Encode of an unspecified type: %v", err)
	}
}

// A tenant that is not a token would put the event on another subject ("a.*" spans tenants),
// so Encode refuses it just as Parse would.
func TestEncodeRejectsInvalidTenant(t *testing.T) {
	for _, tenant := range []string{"", "a.*", "acme >", "Acme", "{acme}"} {
		m, err := Encode(context.Background(), ev(tenant, "generic", "evt-1", tpv1.EventType_EVENT_TYPE_TICKET_CREATED))
		if err == nil || !strings.Contains(err.Error(), "tenant") || m != nil {
			t.Errorf("Encode with tenant %q = %v, %v; want a tenant error and no message", tenant, m, err)
		}
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	valid := ev("acme", "generic", "evt-1", tpv1.EventType_EVENT_TYPE_TICKET_CREATED)
	valid.Sequence = 42
	with := func(f func(*tpv1.TicketEvent)) []byte {
		e := proto.Clone(valid).(*tpv1.TicketEvent)
		f(e)
		return mustMarshal(t, e)
	}
	tests := []struct {
		name       string
		give       []byte
		wantTenant string
		wantErr    string // empty: valid
	}{
		{name: "valid", give: mustMarshal(t, valid), wantTenant: "acme"},
		{name: "empty body", give: nil, wantErr: "tenant"},
		{name: "not protobuf", give: []byte("{\"id\":\"x\"}"), wantErr: "invalid message"},
		{name: "truncated", give: mustMarshal(t, valid)[:5], wantErr: "invalid message"},
		{name: "no tenant", give: with(func(e *tpv1.TicketEvent) { e.Tenant = "" }), wantErr: `tenant ""`},
		{name: "tenant with a dot", give: with(func(e *tpv1.TicketEvent) { e.Tenant = "acme.x" }), wantErr: "tenant"},
		{name: "tenant wildcard", give: with(func(e *tpv1.TicketEvent) { e.Tenant = ">" }), wantErr: "tenant"},
		{name: "upper-case tenant", give: with(func(e *tpv1.TicketEvent) { e.Tenant = "Acme" }), wantErr: "tenant"},
		{name: "tenant too long", give: with(func(e *tpv1.TicketEvent) { e.Tenant = strings.Repeat("a", 64) }), wantErr: "tenant"},
		{name: "no ticket id", give: with(func(e *tpv1.TicketEvent) { e.TicketId = "" }), wantTenant: "acme", wantErr: "empty ticket_id"},
		{name: "no event id", give: with(func(e *tpv1.TicketEvent) { e.Id = "" }), wantTenant: "acme", wantErr: "empty id"},
		{name: "no occurred_at", give: with(func(e *tpv1.TicketEvent) { e.OccurredAt = nil }), wantTenant: "acme", wantErr: "no occurred_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant, got, err := Parse(tt.give)
			if tenant != tt.wantTenant {
				t.Errorf("tenant %q, want %q", tenant, tt.wantTenant)
			}
			if tt.wantErr == "" {
				if err != nil || !proto.Equal(got, valid) {
					t.Fatalf("Parse = %v, %v; want the event", got, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) || got != nil {
				t.Errorf("Parse = %v, %v; want nil and an invalid message error naming %q", got, err, tt.wantErr)
			}
		})
	}
}

func TestParseSnapshot(t *testing.T) {
	valid := &tpv1.KpiSnapshot{Tenant: "acme", Scope: "agent", Id: "ana", ComputedAt: timestamppb.Now()}
	with := func(f func(*tpv1.KpiSnapshot)) []byte {
		s := proto.Clone(valid).(*tpv1.KpiSnapshot)
		f(s)
		return mustMarshal(t, s)
	}
	tests := []struct {
		name    string
		give    []byte
		wantErr bool
	}{
		{name: "agent", give: mustMarshal(t, valid)},
		{name: "team", give: with(func(s *tpv1.KpiSnapshot) { s.Scope = "team" })},
		{name: "queue", give: with(func(s *tpv1.KpiSnapshot) { s.Scope = "queue" })},
		{name: "not protobuf", give: []byte("nope"), wantErr: true},
		{name: "bad tenant", give: with(func(s *tpv1.KpiSnapshot) { s.Tenant = "a.b" }), wantErr: true},
		{name: "other scope", give: with(func(s *tpv1.KpiSnapshot) { s.Scope = "tenant" }), wantErr: true},
		{name: "no computed_at", give: with(func(s *tpv1.KpiSnapshot) { s.ComputedAt = nil }), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant, got, err := ParseSnapshot(tt.give)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) || tenant != "" || got != nil {
					t.Errorf("ParseSnapshot = %q, %v, %v; want an invalid message error", tenant, got, err)
				}
				return
			}
			if err != nil || tenant != "acme" || got.GetId() != "ana" {
				t.Errorf("ParseSnapshot = %q, %v, %v", tenant, got, err)
			}
		})
	}
}

// An event goes through a real TICKETS stream and comes back equal, with its message id and the
// publisher's trace context in the headers.
func TestEncodeDecodeThroughJetStream(t *testing.T) {
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Tickets(time.Hour, 1))
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true}))

	give := ev("acme", "zendesk", "a.b*c >{x}/ü", tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE)
	give.TicketId, give.Public = "T-ü 1", proto.Bool(true)
	give.Sequence = 1<<53 - 1 // the source's order of same-instant events travels with the event
	m, err := Encode(ctx, give)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second is a duplicate the stream drops
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	cons, err := js.OrderedConsumer(ctx, stream.TicketsName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject() != "tickets.acme.agent_message" {
		t.Errorf("subject %q", got.Subject())
	}
	if id := got.Headers().Get(jetstream.MsgIDHeader); id != "acme/zendesk/a.b*c >{x}/ü" {
		t.Errorf("Nats-Msg-Id %q", id)
	}
	if tp := got.Headers().Get("traceparent"); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("traceparent %q", tp)
	}
	tenant, back, err := Decode(got)
	if err != nil || tenant != "acme" || !proto.Equal(back, give) {
		t.Errorf("Decode = %q, %v, %v; want the event", tenant, back, err)
	}
	if back.GetSequence() != 1<<53-1 {
		t.Errorf("sequence %d after the round trip, want %d", back.GetSequence(), uint64(1<<53-1))
	}
	s, err := js.Stream(ctx, stream.TicketsName)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("stream holds %v messages (%v), want 1: the duplicate dropped", info.State.Msgs, err)
	}
}

func FuzzDecode(f *testing.F) {
	valid := ev("acme", "generic", "evt-1", tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE)
	seed, _ := proto.Marshal(valid)
	f.Add(seed)
	valid.Sequence = 1<<64 - 1
	withSeq, _ := proto.Marshal(valid)
	f.Add(withSeq)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	f.Add([]byte(`{"id":"evt-1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tenant, got, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || got != nil {
				t.Fatalf("error %v does not wrap ErrInvalid, or came with %v", err, got)
			}
			return
		}
		if tenant != got.GetTenant() || got.GetId() == "" || got.GetTicketId() == "" || got.GetOccurredAt() == nil {
			t.Fatalf("accepted %v (tenant %q)", got, tenant)
		}
		if strings.ContainsAny(tenant, ".*> ") {
			t.Fatalf("accepted tenant %q", tenant)
		}
		if TypeWord(got.GetType()) == "" {
			return // no subject for it: ingest never publishes one
		}
		m, err := Encode(context.Background(), got)
		if err != nil {
			t.Fatalf("Encode of an accepted event: %v", err)
		}
		if len(strings.Split(m.Subject, ".")) != 3 {
			t.Fatalf("subject %q is not tickets.<tenant>.<type>", m.Subject)
		}
		_, again, err := Parse(m.Data)
		if err != nil || !proto.Equal(again, got) {
			t.Fatalf("round trip: %v, %v", again, err)
		}
	})
}
