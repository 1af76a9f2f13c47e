package outbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

// down refuses every message, as an unreachable server would.
type down struct{}

func (down) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return nil, errors.New("nats: no responders available for request")
}

// A change is published to escalations.<tenant>.<rule> with the message id <tenant>/<id>/<seq>,
// stored once however often it is published, and cleared from the outbox afterwards; one that
// cannot be published is due again after the retry delay.
func TestSendPublishesOnceAndClears(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Escalations(1))
	store := escalationstore.New(rdb, time.Hour)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec, err := store.Reconcile(ctx, escalationstore.Verdict{Tenant: "acme", Rule: "bad-rating",
		Subject: escalationstore.Subject{Kind: escalationstore.Ticket, ID: "T-1"},
		Active:  true, Severity: tpv1.Severity_SEVERITY_WARNING, Version: 1, At: now})
	if err != nil || len(rec.Outbox) != 1 {
		t.Fatalf("reconcile: %v %+v", err, rec)
	}

	published, retryAt := New(down{}, store, func() time.Time { return now }, 5*time.Second, quiet).Send(ctx, "acme", rec)
	if len(published) != 0 || !retryAt.Equal(now.Add(5*time.Second)) {
		t.Fatalf("send while down: %v, retry at %v, want none and now+5s", published, retryAt)
	}

	o := New(js, store, func() time.Time { return now }, 5*time.Second, quiet)
	for range 2 {
		published, retryAt = o.Send(ctx, "acme", rec)
		if len(published) != 1 || !retryAt.IsZero() {
			t.Fatalf("send: %v, retry at %v", published, retryAt)
		}
	}
	s, err := js.Stream(ctx, stream.EscalationsName)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, "escalations.acme.bad-rating")
	if err != nil {
		t.Fatal(err)
	}
	if id := msg.Header.Get(jetstream.MsgIDHeader); id != "acme/"+rec.ID+"/1" {
		t.Errorf("message id %q", id)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 1 {
		t.Errorf("%d messages stored, want 1", info.State.Msgs)
	}

	if err := o.Clear(ctx, map[string][]escalationstore.Pending{"acme": published}); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Get(ctx, "acme", rec.ID); len(got.Outbox) != 0 {
		t.Errorf("outbox after clearing: %+v", got.Outbox)
	}
}
