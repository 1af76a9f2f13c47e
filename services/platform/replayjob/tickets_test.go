package replayjob_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestTickets(t *testing.T) {
	js, _ := tickets(t)
	publish(t, js, "acme", "1")
	last := publish(t, js, "acme", "2")
	s, st, err := replayjob.Tickets(context.Background(), js)
	if err != nil || s == nil || st.FirstSeq != 1 || st.LastSeq != last || st.Msgs != 2 {
		t.Fatalf("Tickets = %v, %+v, %v", s, st, err)
	}
	// No TICKETS stream: the error names it.
	_, url := testenv.NATS(t)
	_, _, err = replayjob.Tickets(context.Background(), testenv.JetStream(t, url))
	if !errors.Is(err, jetstream.ErrStreamNotFound) || err.Error() != "stream TICKETS: nats: API error: code=404 err_code=10059 description=stream not found" {
		t.Errorf("without the stream = %v", err)
	}
}

func TestCheckFrom(t *testing.T) {
	first := time.Date(2026, 3, 1, 12, 0, 0, 500000000, time.UTC)
	whole := jetstream.StreamState{FirstSeq: 1, FirstTime: first}
	trimmed := jetstream.StreamState{FirstSeq: 40, FirstTime: first}
	if err := replayjob.CheckFrom(whole, time.Time{}, ""); err != nil {
		t.Errorf("whole stream: %v", err)
	}
	if err := replayjob.CheckFrom(trimmed, first, ""); err != nil {
		t.Errorf("from its first message: %v", err)
	}
	for _, from := range []time.Time{{}, first.Add(-time.Hour)} {
		err := replayjob.CheckFrom(trimmed, from, " to derive what is left")
		if want := "TICKETS no longer holds the events to rebuild from: its first message (sequence 40) was stored at 2026-03-01T12:00:00Z, the earlier ones are gone (retention); rebuild from that time or later (--from 2026-03-01T12:00:01Z) to derive what is left"; !errors.Is(err, replayjob.ErrRetention) || err.Error() != want {
			t.Errorf("from %v = %v, want %s", from, err, want)
		}
	}
}

func TestLost(t *testing.T) {
	tests := []struct {
		p     replayjob.Progress
		first uint64
		want  string
	}{
		{replayjob.Progress{End: 100, Checkpoint: 50}, 51, ""},
		{replayjob.Progress{End: 100, Checkpoint: 0}, 80, ""},    // not started: Start checked from
		{replayjob.Progress{End: 100, Checkpoint: 100}, 120, ""}, // replayed already
		{replayjob.Progress{End: 100, Checkpoint: 50}, 52, "TICKETS no longer holds the events to rebuild from: the job stopped at sequence 50 and the stream now starts at 52 (retention); start it again with a later --from"},
	}
	for _, tt := range tests {
		if got := replayjob.Lost(tt.p, tt.first); got != tt.want {
			t.Errorf("Lost(%+v, %d) = %q, want %q", tt.p, tt.first, got, tt.want)
		}
	}
}

func TestRunning(t *testing.T) {
	running := errors.New("a rebuild is running")
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	err := replayjob.Running(running, started, time.Time{}, 5, 9)
	if want := "a rebuild is running: it started at 2026-03-01T12:00:00Z, rebuilds from the first message, and has replayed 5 of about 9 events; watch it, or wait for it to end"; !errors.Is(err, running) || err.Error() != want {
		t.Errorf("Running = %v, want %s", err, want)
	}
	err = replayjob.Running(running, started, started.Add(-time.Hour), 0, 0)
	if want := "a rebuild is running: it started at 2026-03-01T12:00:00Z, rebuilds from 2026-03-01T11:00:00Z, and has replayed 0 of about 0 events; watch it, or wait for it to end"; err.Error() != want {
		t.Errorf("Running = %v, want %s", err, want)
	}
}
