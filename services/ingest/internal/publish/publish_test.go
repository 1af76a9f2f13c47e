package publish

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func ev(tenant, source, id string, typ ticketpulsev1.EventType) *ticketpulsev1.TicketEvent {
	return &ticketpulsev1.TicketEvent{
		Id: id, Tenant: tenant, Source: source, TicketId: "T-1", Type: typ,
		OccurredAt: timestamppb.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)),
		Actor:      &ticketpulsev1.Actor{Kind: ticketpulsev1.ActorKind_ACTOR_KIND_SYSTEM},
	}
}

func TestPublish(t *testing.T) {
	_, url := testenv.NATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stream.Ensure(context.Background(), js, stream.Tickets(time.Hour, 1))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(nc, Options{MaxPending: 8, AckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	created := ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED
	batch := make([]*ticketpulsev1.TicketEvent, 20) // more than MaxPending: the batch must wait for room, not fail
	for i := range batch {
		batch[i] = ev("acme", "generic", "evt-"+string(rune('a'+i)), created)
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	tests := []struct {
		name           string
		ctx            context.Context
		give           []*ticketpulsev1.TicketEvent
		wantDuplicates int
		wantErr        error // nil, ErrUnavailable, or errPermanent
		wantStored     uint64
	}{
		{name: "new batch", give: batch, wantStored: 20},
		{name: "same batch again", give: batch, wantDuplicates: 20, wantStored: 20},
		{name: "same id from another source is new", give: []*ticketpulsev1.TicketEvent{ev("acme", "zendesk", "evt-a", created)}, wantStored: 21},
		{name: "deadline already passed", ctx: expired, give: []*ticketpulsev1.TicketEvent{ev("acme", "generic", "late", created)}, wantErr: ErrUnavailable, wantStored: 21},
		{
			name:    "bad tenant publishes nothing",
			give:    []*ticketpulsev1.TicketEvent{ev("acme", "generic", "ok", created), ev("a.*", "generic", "x", created)},
			wantErr: errPermanent, wantStored: 21,
		},
		{
			name:    "unspecified type publishes nothing",
			give:    []*ticketpulsev1.TicketEvent{ev("acme", "generic", "u", ticketpulsev1.EventType_EVENT_TYPE_UNSPECIFIED)},
			wantErr: errPermanent, wantStored: 21,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
			}
			res, err := p.Publish(ctx, tt.give)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Publish: %v", err)
			case tt.wantErr == ErrUnavailable && !errors.Is(err, ErrUnavailable):
				t.Fatalf("Publish = %v; want ErrUnavailable", err)
			case tt.wantErr == errPermanent && (err == nil || errors.Is(err, ErrUnavailable)):
				t.Fatalf("Publish = %v; want a permanent error", err)
			}
			if res.Duplicates != tt.wantDuplicates {
				t.Errorf("Duplicates = %d; want %d", res.Duplicates, tt.wantDuplicates)
			}
			info, err := st.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != tt.wantStored {
				t.Errorf("stream holds %d; want %d", info.State.Msgs, tt.wantStored)
			}
		})
	}
}

var errPermanent = errors.New("permanent")
