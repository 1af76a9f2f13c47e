package app

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// storedBatches reads the whole stream: each message's Nats-Msg-Id in stream order, and the
// size of each atomic batch they came in, in order (a plain publish is not a batch).
func storedBatches(t *testing.T, s jetstream.Stream) (ids []string, batches []int) {
	t.Helper()
	ctx := context.Background()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := ""
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
		switch b := m.Header.Get("Nats-Batch-Id"); {
		case b == "":
		case b == last:
			batches[len(batches)-1]++
		default:
			batches = append(batches, 1)
		}
		last = m.Header.Get("Nats-Batch-Id")
	}
	return ids, batches
}

func wantStored(t *testing.T, s jetstream.Stream, ids string, batches []int) {
	t.Helper()
	gotIDs, gotBatches := storedBatches(t, s)
	if got := strings.Join(gotIDs, " "); got != ids {
		t.Errorf("stream holds %q,\nwant %q", got, ids)
	}
	if !slices.Equal(gotBatches, batches) {
		t.Errorf("atomic batches of %v events, want %v", gotBatches, batches)
	}
}

// setMaxMsgs changes the running stream's message limit (discard new: past it, stores fail).
func setMaxMsgs(t *testing.T, url string, n int64) {
	t.Helper()
	s := tickets(t, url)
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs = n
	if _, err := jetStream(t, url).UpdateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}

func events(ids ...string) string {
	evs := make([]string, len(ids))
	for i, id := range ids {
		evs[i] = event(id, "ticket_created", "")
	}
	return "[" + strings.Join(evs, ",") + "]"
}

const notStored = `{"error":"events not stored","reason":"the event stream did not acknowledge every event; sending the same request again is safe"}`

func TestPostIsOneAtomicBatch(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil) // MaxEvents 5
	s := tickets(t, url)

	wantJSON(t, r.post(t, "acme", events("a1", "a2", "a3", "a4", "a5")), http.StatusAccepted,
		`{"accepted":["a1","a2","a3","a4","a5"],"duplicates":0}`)
	all := "acme/generic/a1 acme/generic/a2 acme/generic/a3 acme/generic/a4 acme/generic/a5"
	wantStored(t, s, all, []int{5})

	// An event repeated within a request is stored once, and the request is still one batch.
	wantJSON(t, r.post(t, "acme", events("b1", "b2", "b1")), http.StatusAccepted,
		`{"accepted":["b1","b2","b1"],"duplicates":1}`)
	all += " acme/generic/b1 acme/generic/b2"
	wantStored(t, s, all, []int{5, 2})

	// Overlapping an earlier request: the stream refuses the batch whole, and its events are
	// stored one by one, each once.
	wantJSON(t, r.post(t, "acme", events("a4", "a5", "c1")), http.StatusAccepted,
		`{"accepted":["a4","a5","c1"],"duplicates":2}`)
	all += " acme/generic/c1"
	wantStored(t, s, all, []int{5, 2})

	// A retried request stores nothing again.
	wantJSON(t, r.post(t, "acme", events("a1", "a2", "a3", "a4", "a5")), http.StatusAccepted,
		`{"accepted":["a1","a2","a3","a4","a5"],"duplicates":5}`)
	wantStored(t, s, all, []int{5, 2})
}

// A request the stream cannot take whole is answered 503 and stores nothing; sent again once
// there is room, it is stored.
func TestPostNotStoredIsAllOrNothing(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil)
	s := tickets(t, url)
	wantJSON(t, r.post(t, "acme", events("a1", "a2")), http.StatusAccepted, `{"accepted":["a1","a2"],"duplicates":0}`)
	setMaxMsgs(t, url, 4) // room for two of the next request's four events

	got := r.post(t, "acme", events("b1", "b2", "b3", "b4"))
	wantJSON(t, got, http.StatusServiceUnavailable, notStored)
	if ra := got.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q; want 2", ra)
	}
	wantStored(t, s, "acme/generic/a1 acme/generic/a2", []int{2})

	setMaxMsgs(t, url, -1)
	wantJSON(t, r.post(t, "acme", events("b1", "b2", "b3", "b4")), http.StatusAccepted,
		`{"accepted":["b1","b2","b3","b4"],"duplicates":0}`)
	wantStored(t, s, "acme/generic/a1 acme/generic/a2 acme/generic/b1 acme/generic/b2 acme/generic/b3 acme/generic/b4", []int{2, 4})
}

// A request larger than the server's batch limit is split into atomic parts. When a part
// fails, the answer is 503 and the parts before it stay stored: sending the request again
// stores the rest, and the stored part's events count as duplicates.
func TestPostSplitAtTheServersBatchLimit(t *testing.T) {
	_, url := testenv.NATSWith(t, func(o *server.Options) { o.JetStreamLimits.MaxBatchSize = 2 })
	r := start(t, url, nil)
	s := tickets(t, url)
	wantJSON(t, r.post(t, "acme", events("a1", "a2", "a3", "a4", "a5")), http.StatusAccepted,
		`{"accepted":["a1","a2","a3","a4","a5"],"duplicates":0}`)
	// 2 + 2 in batches; the last event alone is a plain publish.
	a := "acme/generic/a1 acme/generic/a2 acme/generic/a3 acme/generic/a4 acme/generic/a5"
	wantStored(t, s, a, []int{2, 2})

	setMaxMsgs(t, url, 8) // room for the first part of the next request, not the second
	wantJSON(t, r.post(t, "acme", events("b1", "b2", "b3", "b4")), http.StatusServiceUnavailable, notStored)
	wantStored(t, s, a+" acme/generic/b1 acme/generic/b2", []int{2, 2, 2})

	setMaxMsgs(t, url, -1)
	wantJSON(t, r.post(t, "acme", events("b1", "b2", "b3", "b4")), http.StatusAccepted,
		`{"accepted":["b1","b2","b3","b4"],"duplicates":2}`)
	wantStored(t, s, a+" acme/generic/b1 acme/generic/b2 acme/generic/b3 acme/generic/b4", []int{2, 2, 2, 2})
}

// A webhook delivery of one event is one plain publish, as before batches; one of several
// events is one batch like an events API request.
func TestWebhookSingleEventIsOnePublish(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startWebhooks(t, url)
	s := tickets(t, url)
	one := "[" + event("w-1", "agent_message", `"public":true`) + "]"
	wantJSON(t, r.hook(t, "acme", "generic", one, signed("d-1", time.Now(), one)), 202, `{"accepted":["w-1"],"duplicates":0}`)
	wantStored(t, s, "acme/generic/w-1", nil)
	// The same event in another delivery is acknowledged as a duplicate, as before.
	wantJSON(t, r.hook(t, "acme", "generic", one, signed("d-2", time.Now(), one)), 202, `{"accepted":["w-1"],"duplicates":1}`)
	two := events("w-2", "w-3")
	wantJSON(t, r.hook(t, "acme", "generic", two, signed("d-3", time.Now(), two)), 202, `{"accepted":["w-2","w-3"],"duplicates":0}`)
	wantStored(t, s, "acme/generic/w-1 acme/generic/w-2 acme/generic/w-3", []int{2})
}

// A TICKETS stream from before atomic publish is updated in place when ingest starts: its
// events stay and new requests are stored as batches.
func TestStartUpdatesTicketsForAtomicPublish(t *testing.T) {
	_, url := testenv.NATS(t)
	ctx := context.Background()
	js := jetStream(t, url)
	old := stream.Tickets(0, 1)
	old.AllowAtomicPublish = false
	if _, err := stream.Ensure(ctx, js, old); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, stream.TicketSubject("acme", "ticket_created"), []byte("old"), jetstream.WithMsgID("acme/generic/old")); err != nil {
		t.Fatal(err)
	}
	r := start(t, url, nil)
	s := tickets(t, url)
	if !s.CachedInfo().Config.AllowAtomicPublish {
		t.Fatal("ingest did not enable atomic publish on the existing stream")
	}
	wantJSON(t, r.post(t, "acme", events("a1", "a2")), http.StatusAccepted, `{"accepted":["a1","a2"],"duplicates":0}`)
	wantStored(t, s, "acme/generic/old acme/generic/a1 acme/generic/a2", []int{2})
}
