package replayjob_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

// tickets starts NATS with the TICKETS stream and returns it.
func tickets(t *testing.T) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Tickets(0, 1))
	s, err := js.Stream(context.Background(), stream.TicketsName)
	if err != nil {
		t.Fatal(err)
	}
	return js, s
}

// publish stores one event of tenant and returns its stream sequence.
func publish(t *testing.T, js jetstream.JetStream, tenant, id string) uint64 {
	t.Helper()
	ev := &tpv1.TicketEvent{Tenant: tenant, Id: id, TicketId: "T-" + id, Source: "test",
		Type: tpv1.EventType_EVENT_TYPE_TICKET_CREATED, OccurredAt: timestamppb.Now()}
	m, err := eventcodec.Encode(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// recorder collects what Replay applies and checkpoints.
type recorder struct {
	ids   []string
	ckpts []replayjob.Progress
}

func (r *recorder) apply(_ context.Context, evs []*tpv1.TicketEvent) error {
	for _, ev := range evs {
		r.ids = append(r.ids, ev.GetId())
	}
	return nil
}

func (r *recorder) checkpoint(_ context.Context, p replayjob.Progress) error {
	r.ckpts = append(r.ckpts, p)
	return nil
}

// The replay applies the tenant's messages up to End in order, counts the undecodable one
// without applying it, leaves later messages and other tenants' alone, and checkpoints the end.
func TestReplayUpToEnd(t *testing.T) {
	js, s := tickets(t)
	ctx := context.Background()
	publish(t, js, "acme", "1")
	publish(t, js, "other", "x1")
	publish(t, js, "acme", "2")
	if _, err := js.Publish(ctx, stream.TicketSubject("acme", "created"), []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "acme", "3")
	end := publish(t, js, "other", "x2")
	publish(t, js, "acme", "4") // after the end: the live consumer's

	var rec recorder
	p := replayjob.Progress{End: end}
	if err := replayjob.Replay(ctx, s, "acme", time.Time{}, &p, 2, time.Hour, rec.apply, rec.checkpoint); err != nil {
		t.Fatal(err)
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(rec.ids, want) {
		t.Errorf("applied %v, want %v", rec.ids, want)
	}
	want := replayjob.Progress{End: end, Checkpoint: end, Done: 4, Total: 4}
	if p != want {
		t.Errorf("progress = %+v, want %+v", p, want)
	}
	if len(rec.ckpts) != 1 || rec.ckpts[0] != want {
		t.Errorf("checkpoints = %+v, want one of %+v", rec.ckpts, want)
	}
}

// A replay resumes after its checkpoint, and checkpoints on its way when the interval passed.
func TestReplayResumesAfterCheckpoint(t *testing.T) {
	js, s := tickets(t)
	var seqs []uint64
	for i := range 5 {
		seqs = append(seqs, publish(t, js, "acme", fmt.Sprint(i)))
	}
	var rec recorder
	p := replayjob.Progress{End: seqs[4], Checkpoint: seqs[1], Done: 2, Total: 5}
	if err := replayjob.Replay(context.Background(), s, "acme", time.Time{}, &p, 1, 0, rec.apply, rec.checkpoint); err != nil {
		t.Fatal(err)
	}
	if want := []string{"2", "3", "4"}; !slices.Equal(rec.ids, want) {
		t.Errorf("applied %v, want %v", rec.ids, want)
	}
	if len(rec.ckpts) != 3 || rec.ckpts[0].Checkpoint != seqs[2] || rec.ckpts[0].Done != 3 || rec.ckpts[0].Total != 5 {
		t.Errorf("checkpoints = %+v, want one a message, the first at sequence %d with 3 of 5 done", rec.ckpts, seqs[2])
	}
	if p.Done != 5 || p.Total != 5 || p.Checkpoint != seqs[4] {
		t.Errorf("progress = %+v", p)
	}
}

// From a time, only what was stored from then on is replayed.
func TestReplayFromTime(t *testing.T) {
	js, s := tickets(t)
	publish(t, js, "acme", "old")
	time.Sleep(20 * time.Millisecond)
	from := time.Now()
	end := publish(t, js, "acme", "new")
	var rec recorder
	p := replayjob.Progress{End: end}
	if err := replayjob.Replay(context.Background(), s, "acme", from, &p, 10, time.Hour, rec.apply, rec.checkpoint); err != nil {
		t.Fatal(err)
	}
	if want := []string{"new"}; !slices.Equal(rec.ids, want) {
		t.Errorf("applied %v, want %v", rec.ids, want)
	}
}

// apply's and checkpoint's errors stop the replay as they are, and the progress stays at the
// last batch applied.
func TestReplayErrors(t *testing.T) {
	js, s := tickets(t)
	end := publish(t, js, "acme", "1")
	failed := errors.New("write refused")
	p := replayjob.Progress{End: end}
	err := replayjob.Replay(context.Background(), s, "acme", time.Time{}, &p, 10, time.Hour,
		func(context.Context, []*tpv1.TicketEvent) error { return failed }, (&recorder{}).checkpoint)
	if err != failed || p.Checkpoint != 0 || p.Done != 0 {
		t.Errorf("apply failing: err %v, progress %+v; want %v and no progress", err, p, failed)
	}
	p = replayjob.Progress{End: end}
	err = replayjob.Replay(context.Background(), s, "acme", time.Time{}, &p, 10, time.Hour, (&recorder{}).apply,
		func(context.Context, replayjob.Progress) error { return failed })
	if err != failed {
		t.Errorf("checkpoint failing: err %v, want %v", err, failed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = replayjob.Progress{End: end}
	err = replayjob.Replay(ctx, s, "acme", time.Time{}, &p, 10, time.Hour, (&recorder{}).apply, (&recorder{}).checkpoint)
	if !errors.Is(err, context.Canceled) || err.Error() != "replay consumer of tenant acme: context canceled" {
		t.Errorf("canceled: err %v", err)
	}
}

// Run fixes a new job's end at the stream's last message (checkpointing it first), replays up
// to it, and resumes a job from its checkpoint.
func TestRun(t *testing.T) {
	js, _ := tickets(t)
	publish(t, js, "acme", "1")
	end := publish(t, js, "acme", "2")
	var rec recorder
	p, lost, err := replayjob.Run(context.Background(), js, "acme", replayjob.Job{}, 10, time.Hour, rec.apply, rec.checkpoint)
	want := replayjob.Progress{End: end, Checkpoint: end, Done: 2, Total: 2}
	if err != nil || lost != "" || p != want || !slices.Equal(rec.ids, []string{"1", "2"}) {
		t.Fatalf("Run = %+v, %q, %v, applied %v; want %+v", p, lost, err, rec.ids, want)
	}
	if len(rec.ckpts) != 2 || rec.ckpts[0] != (replayjob.Progress{End: end}) || rec.ckpts[1] != want {
		t.Errorf("checkpoints = %+v, want the end first", rec.ckpts)
	}
	// Done: nothing to replay, nothing checkpointed.
	rec = recorder{}
	if p, lost, err := replayjob.Run(context.Background(), js, "acme", replayjob.Job{End: end, Checkpoint: end, Done: 2, Total: 2}, 10, time.Hour, rec.apply, rec.checkpoint); err != nil || lost != "" || p != want || len(rec.ids)+len(rec.ckpts) != 0 {
		t.Errorf("finished job: Run = %+v, %q, %v, applied %v, checkpoints %v", p, lost, err, rec.ids, rec.ckpts)
	}
	publish(t, js, "acme", "3")
	rec = recorder{}
	if p, _, err := replayjob.Run(context.Background(), js, "acme", replayjob.Job{End: end, Checkpoint: end - 1, Done: 1, Total: 2}, 10, time.Hour, rec.apply, rec.checkpoint); err != nil || p != want || !slices.Equal(rec.ids, []string{"2"}) {
		t.Errorf("resumed: Run = %+v, %v, applied %v; want %+v", p, err, rec.ids, want)
	}
}

// A job whose next messages retention dropped is lost: Run says why and replays nothing.
func TestRunLost(t *testing.T) {
	js, s := tickets(t)
	for i := range 4 {
		publish(t, js, "acme", fmt.Sprint(i))
	}
	if err := s.Purge(context.Background(), jetstream.WithPurgeSequence(4)); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	p, lost, err := replayjob.Run(context.Background(), js, "acme", replayjob.Job{End: 4, Checkpoint: 1, Done: 1, Total: 4}, 10, time.Hour, rec.apply, rec.checkpoint)
	if want := "TICKETS no longer holds the events to rebuild from: the job stopped at sequence 1 and the stream now starts at 4 (retention); start it again with a later --from"; err != nil || lost != want || len(rec.ids)+len(rec.ckpts) != 0 || p.Checkpoint != 1 {
		t.Errorf("Run = %+v, %q, %v, applied %v; want %q and nothing replayed", p, lost, err, rec.ids, want)
	}
}
