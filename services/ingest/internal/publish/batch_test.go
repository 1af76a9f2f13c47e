package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// batchEnv is a TICKETS stream (cfg applied to the default) on its own server, configured by
// configure if not nil, and a publisher with o on it.
type batchEnv struct {
	t  *testing.T
	nc *nats.Conn
	js jetstream.JetStream
	st jetstream.Stream
	p  *Publisher
}

func newBatchEnv(t *testing.T, configure func(*server.Options), cfg func(*jetstream.StreamConfig), o Options) *batchEnv {
	t.Helper()
	_, url := testenv.NATSWith(t, configure)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sc := stream.Tickets(time.Hour, 1)
	if cfg != nil {
		cfg(&sc)
	}
	st, err := stream.Ensure(context.Background(), js, sc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(nc, o)
	if err != nil {
		t.Fatal(err)
	}
	return &batchEnv{t: t, nc: nc, js: js, st: st, p: p}
}

// events are n ticket_created events of tenant acme with ids evt-<from> to evt-<from+n-1>.
func events(from, n int) []*ticketpulsev1.TicketEvent {
	out := make([]*ticketpulsev1.TicketEvent, n)
	for i := range out {
		out[i] = ev("acme", "generic", fmt.Sprintf("evt-%03d", from+i), ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED)
	}
	return out
}

func (e *batchEnv) publish(evs []*ticketpulsev1.TicketEvent) (Result, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.p.Publish(ctx, evs)
}

// stored is the stream's messages as their Nats-Msg-Id, in stream order, with how many
// atomic batches they came in (distinct Nats-Batch-Id headers; 0 for single publishes).
func (e *batchEnv) stored() (ids []string, batches int) {
	e.t.Helper()
	ctx := context.Background()
	info, err := e.st.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := e.st.GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatalf("message %d: %v", seq, err)
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
		if b := m.Header.Get(batchIDHeader); b != "" && !seen[b] {
			seen[b] = true
			batches++
		}
	}
	return ids, batches
}

func msgIDs(evs []*ticketpulsev1.TicketEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = eventcodec.MsgID(ev)
	}
	return out
}

func checkStored(t *testing.T, e *batchEnv, wantIDs []string, wantBatches int) {
	t.Helper()
	ids, batches := e.stored()
	if strings.Join(ids, " ") != strings.Join(wantIDs, " ") {
		t.Errorf("stream holds %d events %v,\nwant %d %v", len(ids), ids, len(wantIDs), wantIDs)
	}
	if batches != wantBatches {
		t.Errorf("stream holds %d atomic batches, want %d", batches, wantBatches)
	}
}

func TestPublishRequestIsOneAtomicBatch(t *testing.T) {
	e := newBatchEnv(t, nil, nil, Options{})
	evs := events(0, 100)
	res, err := e.publish(evs)
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{}) {
		t.Errorf("result %+v, want no duplicates and nothing unbatched", res)
	}
	checkStored(t, e, msgIDs(evs), 1)

	// One event is one plain publish, as before batches.
	one := events(100, 1)
	if res, err := e.publish(one); err != nil || res != (Result{}) {
		t.Fatalf("single event: %+v, %v", res, err)
	}
	checkStored(t, e, append(msgIDs(evs), msgIDs(one)...), 1)
}

func TestPublishBatchKeepsTraceHeaders(t *testing.T) {
	e := newBatchEnv(t, nil, nil, Options{})
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	if _, err := e.p.Publish(ctx, events(0, 3)); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		m, err := e.st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if tp := m.Header.Get("traceparent"); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
			t.Errorf("message %d traceparent %q, want the request's trace", seq, tp)
		}
	}
}

// With a tracer, a request's events are sent in one producer span, child of the request's, and
// each message carries that span's context; the span names the tenant and, for one event, the
// ticket and type.
func TestPublishSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	e := newBatchEnv(t, nil, nil, Options{Tracer: tracer})
	ctx, request := tracer.Start(context.Background(), "request")
	if _, err := e.p.Publish(ctx, events(0, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Publish(ctx, events(3, 1)); err != nil {
		t.Fatal(err)
	}
	request.End()
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want two sends and the request", len(spans))
	}
	for i, want := range []map[string]string{
		{"messaging.destination.name": "TICKETS", "messaging.batch.message_count": "3", "tenant": "acme", "source": "generic", "ticket_id": ""},
		{"messaging.batch.message_count": "1", "tenant": "acme", "ticket_id": "T-1", "event_type": "ticket_created", "event_id": "evt-003"},
	} {
		s := spans[i]
		if s.Name() != "send TICKETS" || s.SpanKind() != trace.SpanKindProducer || s.Parent().SpanID() != request.SpanContext().SpanID() {
			t.Errorf("span %d: %q kind %v parent %v; want send TICKETS, producer, child of the request", i, s.Name(), s.SpanKind(), s.Parent().SpanID())
		}
		got := map[string]string{}
		for _, kv := range s.Attributes() {
			got[string(kv.Key)] = kv.Value.Emit()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("span %d attribute %s = %q, want %q", i, k, got[k], v)
			}
		}
	}
	for seq, span := range map[uint64]int{1: 0, 3: 0, 4: 1} {
		m, err := e.st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		want := "00-" + spans[span].SpanContext().TraceID().String() + "-" + spans[span].SpanContext().SpanID().String() + "-01"
		if tp := m.Header.Get("traceparent"); tp != want {
			t.Errorf("message %d traceparent %q, want the send span's %q", seq, tp, want)
		}
	}
}

// A batch the stream cannot take whole is stored not at all, where one message per event would
// have filled the stream up to its limit.
func TestPublishBatchIsAllOrNothing(t *testing.T) {
	e := newBatchEnv(t, nil, func(c *jetstream.StreamConfig) { c.MaxMsgs = 25 }, Options{})
	first := events(0, 20)
	if _, err := e.publish(first); err != nil {
		t.Fatal(err)
	}
	_, err := e.publish(events(20, 10))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("batch past the stream's limit: %v, want ErrUnavailable", err)
	}
	if want := "atomic batch of 10 events: nats: API error: code=503 err_code=10077 description=maximum messages exceeded"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
	checkStored(t, e, msgIDs(first), 1)
}

func TestPublishDeduplicatesEvents(t *testing.T) {
	e := newBatchEnv(t, nil, nil, Options{})
	a, b := events(0, 10), events(5, 10) // b overlaps a in evt-005..evt-009
	if res, err := e.publish(a); err != nil || res != (Result{}) {
		t.Fatalf("first request: %+v, %v", res, err)
	}
	// The server refuses the overlapping batch whole; its events go one by one, deduplicated.
	res, err := e.publish(b)
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Duplicates: 5, Unbatched: 10}) {
		t.Errorf("overlapping request: %+v, want 5 duplicates and 10 unbatched", res)
	}
	// A retried request: every event a duplicate, nothing stored again.
	if res, err := e.publish(a); err != nil || res != (Result{Duplicates: 10, Unbatched: 10}) {
		t.Errorf("retried request: %+v, %v; want 10 duplicates and 10 unbatched", res, err)
	}
	want := append(msgIDs(a), msgIDs(b[5:])...)
	checkStored(t, e, want, 1)

	// Within one request the repeat is sent once, and the batch stays atomic.
	c := events(100, 3)
	res, err = e.publish([]*ticketpulsev1.TicketEvent{c[0], c[1], c[0], c[2], c[1]})
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Duplicates: 2}) {
		t.Errorf("request repeating two events: %+v, want 2 duplicates", res)
	}
	checkStored(t, e, append(want, msgIDs(c)...), 2)
}

func TestPublishSplitsBatches(t *testing.T) {
	t.Run("at the publisher's size", func(t *testing.T) {
		e := newBatchEnv(t, nil, nil, Options{MaxBatch: 4})
		evs := events(0, 10)
		if res, err := e.publish(evs); err != nil || res != (Result{}) {
			t.Fatalf("%+v, %v", res, err)
		}
		checkStored(t, e, msgIDs(evs), 3) // 4 + 4 + 2
	})
	t.Run("at the server's limit", func(t *testing.T) {
		e := newBatchEnv(t, func(o *server.Options) { o.JetStreamLimits.MaxBatchSize = 5 }, nil, Options{})
		evs := events(0, 12)
		if res, err := e.publish(evs); err != nil || res != (Result{}) {
			t.Fatalf("%+v, %v", res, err)
		}
		checkStored(t, e, msgIDs(evs), 3) // refused as 12, then 5 + 5 + 2
		if got := e.p.maxPart.Load(); got != 5 {
			t.Errorf("publisher splits at %d after the refusal, want the server's 5", got)
		}
		// A remainder of one event is a plain publish.
		more := events(12, 6)
		if res, err := e.publish(more); err != nil || res != (Result{}) {
			t.Fatalf("%+v, %v", res, err)
		}
		checkStored(t, e, msgIDs(append(evs, more...)), 4)
	})
	t.Run("a failed part leaves the earlier parts stored", func(t *testing.T) {
		e := newBatchEnv(t, nil, func(c *jetstream.StreamConfig) { c.MaxMsgs = 6 }, Options{MaxBatch: 4})
		evs := events(0, 10)
		_, err := e.publish(evs)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("second part past the stream's limit: %v, want ErrUnavailable", err)
		}
		if want := "maximum messages exceeded (the first 4 of 10 events were stored)"; !strings.HasSuffix(err.Error(), want) {
			t.Errorf("error %q, want it to end %q", err, want)
		}
		checkStored(t, e, msgIDs(evs[:4]), 1)

		// Sending the request again once there is room stores the rest, each event once.
		cfg := e.st.CachedInfo().Config
		cfg.MaxMsgs = -1
		if _, err := e.js.UpdateStream(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		res, err := e.publish(evs)
		if err != nil {
			t.Fatal(err)
		}
		if res != (Result{Duplicates: 4, Unbatched: 4}) {
			t.Errorf("retry: %+v, want the stored part's 4 duplicates, unbatched", res)
		}
		checkStored(t, e, msgIDs(evs), 3)
	})
}

// A stream that does not allow atomic publish (a server or stream not yet updated) still takes
// every event, one message each.
func TestPublishWithoutAtomicPublish(t *testing.T) {
	e := newBatchEnv(t, nil, func(c *jetstream.StreamConfig) { c.AllowAtomicPublish = false }, Options{})
	evs := events(0, 5)
	res, err := e.publish(evs)
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Unbatched: 5}) {
		t.Errorf("%+v, want 5 unbatched", res)
	}
	checkStored(t, e, msgIDs(evs), 0)
}

func TestPublishBatchUnavailable(t *testing.T) {
	t.Run("no stream", func(t *testing.T) {
		e := newBatchEnv(t, nil, nil, Options{})
		if err := e.js.DeleteStream(context.Background(), stream.TicketsName); err != nil {
			t.Fatal(err)
		}
		_, err := e.publish(events(0, 5))
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "commit atomic batch of 5 events on tickets.acme.ticket_created: nats: no responders") {
			t.Fatalf("batch without a stream: %v, want ErrUnavailable with no responders", err)
		}
	})
	t.Run("no committer before the deadline", func(t *testing.T) {
		e := newBatchEnv(t, nil, nil, Options{MaxBatches: 1})
		e.p.mu.Lock()
		e.p.committers = 1 // the only committer is busy with other requests
		e.p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := e.p.Publish(ctx, events(0, 5))
		if !errors.Is(err, ErrUnavailable) || !strings.HasSuffix(err.Error(), "waiting for an atomic batch: context deadline exceeded") {
			t.Fatalf("%v, want ErrUnavailable waiting for a batch", err)
		}
		// Once the committer is free, the abandoned request is skipped, not stored.
		e.p.mu.Lock()
		e.p.committers = 0
		e.p.mu.Unlock()
		later := events(5, 3)
		if _, err := e.publish(later); err != nil {
			t.Fatal(err)
		}
		checkStored(t, e, msgIDs(later), 1)
	})
}

// holdCommitters makes p's committers look busy, so requests wait in pending; release lets
// one committer take them.
func holdCommitters(p *Publisher) (release func()) {
	p.mu.Lock()
	p.committers = p.maxCommitters
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.committers = 1
		p.mu.Unlock()
		go p.commitLoop()
	}
}

// publishAll publishes each request from its own goroutine, each queued before the next starts
// (committers held), and returns their outcomes in order once wait returns.
func publishAll(t *testing.T, e *batchEnv, reqs ...[]*ticketpulsev1.TicketEvent) (results []Result, errs []error, wait func()) {
	t.Helper()
	results, errs = make([]Result, len(reqs)), make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			results[i], errs[i] = e.p.Publish(ctx, r)
		})
		for start := time.Now(); ; time.Sleep(time.Millisecond) {
			e.p.mu.Lock()
			waiting := len(e.p.pending)
			e.p.mu.Unlock()
			if waiting == i+1 {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%d requests waiting after 5 s, want %d", waiting, i+1)
			}
		}
	}
	return results, errs, wg.Wait
}

func TestPublishGroupCommit(t *testing.T) {
	t.Run("requests waiting together share one batch", func(t *testing.T) {
		e := newBatchEnv(t, nil, nil, Options{MaxBatch: 25})
		release := holdCommitters(e.p)
		a, b, c, d := events(0, 10), events(10, 10), events(20, 5), events(25, 10)
		results, errs, wait := publishAll(t, e, a, b, c, d)
		release()
		wait()
		for i := range errs {
			if errs[i] != nil || results[i] != (Result{}) {
				t.Errorf("request %d: %+v, %v", i, results[i], errs[i])
			}
		}
		// The first three fill 25; the fourth would not fit and gets the next batch.
		checkStored(t, e, msgIDs(slices.Concat(a, b, c, d)), 2)
	})
	t.Run("a refused shared batch is committed request by request", func(t *testing.T) {
		e := newBatchEnv(t, nil, nil, Options{})
		release := holdCommitters(e.p)
		a, b := events(0, 10), events(10, 10)
		overlap := events(5, 10) // evt-005..evt-014: in both others, stored by neither yet
		results, errs, wait := publishAll(t, e, a, b, overlap)
		release()
		wait()
		for i, want := range []Result{{}, {}, {Duplicates: 10, Unbatched: 10}} {
			if errs[i] != nil || results[i] != want {
				t.Errorf("request %d: %+v, %v; want %+v", i, results[i], errs[i], want)
			}
		}
		checkStored(t, e, msgIDs(slices.Concat(a, b)), 2)
	})
}

func TestTooLargeLimit(t *testing.T) {
	for _, tt := range []struct {
		desc    string
		refused int
		want    int
	}{
		{"atomic publish batch is too large: 500", 1000, 500},
		{"atomic publish batch is too large", 1000, 500},
		{"atomic publish batch is too large: 2000", 1000, 500}, // not smaller: halve
		{"atomic publish batch is too large: x", 3, 1},
		{"atomic publish batch is too large: 0", 2, 1},
	} {
		if got := tooLargeLimit(tt.desc, tt.refused); got != tt.want {
			t.Errorf("tooLargeLimit(%q, %d) = %d, want %d", tt.desc, tt.refused, got, tt.want)
		}
	}
}

// The stream allows atomic publish but the server drops the batch before its commit (here: too
// many batches open on the stream): nothing was stored, and the events go one by one.
func TestPublishBatchDroppedByTheServer(t *testing.T) {
	e := newBatchEnv(t, func(o *server.Options) { o.JetStreamLimits.MaxBatchInflightPerStream = 1 }, nil, Options{})
	// Another client holds the stream's only open batch.
	m := nats.NewMsg(stream.TicketSubject("acme", "ticket_created"))
	m.Header.Set(batchIDHeader, "someone-else")
	m.Header.Set(batchSeqHeader, "1")
	if _, err := e.nc.RequestMsg(m, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	evs := events(0, 4)
	res, err := e.publish(evs)
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Unbatched: 4}) {
		t.Errorf("%+v, want 4 unbatched", res)
	}
	checkStored(t, e, msgIDs(evs), 0)
}

// A server that does not know atomic batches stores each message and acknowledges the commit as
// a plain message: the publisher notices the acknowledgement lacks the batch and sends every
// event again one by one, so each is confirmed (and stored once, by its Nats-Msg-Id).
func TestPublishServerWithoutBatches(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		wantRes Result
		wantErr string
	}{
		{name: "plain acknowledgement", reply: `{"stream":"TICKETS","seq":7}`, wantRes: Result{Unbatched: 3}},
		{name: "unreadable acknowledgement", reply: `not json`,
			wantErr: "jetstream did not acknowledge: commit atomic batch of 3 events: unreadable acknowledgement: invalid character 'o' in literal null (expecting 'u')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newBatchEnv(t, nil, nil, Options{AckTimeout: time.Second})
			if err := e.js.DeleteStream(context.Background(), stream.TicketsName); err != nil {
				t.Fatal(err)
			}
			// A stand-in for the old server: it answers every message with a reply subject.
			srv, err := nats.Connect(e.nc.ConnectedUrl())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			var batched, plain atomic.Int64
			if _, err := srv.Subscribe("tickets.>", func(m *nats.Msg) {
				if m.Header.Get(batchIDHeader) != "" {
					batched.Add(1)
				} else {
					plain.Add(1)
				}
				if m.Reply != "" {
					_ = m.Respond([]byte(tt.reply))
				}
			}); err != nil {
				t.Fatal(err)
			}
			if err := srv.Flush(); err != nil {
				t.Fatal(err)
			}
			res, err := e.publish(events(0, 3))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res != tt.wantRes {
				t.Errorf("%+v, want %+v", res, tt.wantRes)
			}
			if batched.Load() != 3 || plain.Load() != 3 {
				t.Errorf("server saw %d batch and %d plain messages, want 3 and 3", batched.Load(), plain.Load())
			}
		})
	}
}

// Without atomic publish on the stream, the fall-back is logged once, not per request.
func TestPublishWithoutAtomicPublishWarnsOnce(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	e := newBatchEnv(t, nil, func(c *jetstream.StreamConfig) { c.AllowAtomicPublish = false }, Options{Log: log})
	for i := range 3 {
		if _, err := e.publish(events(i*10, 2)); err != nil {
			t.Fatal(err)
		}
	}
	want := "level=WARN msg=\"the stream does not allow atomic publish; publishing one message per event (one fsync each under sync always)\"\n"
	if logs.String() != want {
		t.Errorf("log\n%s\nwant\n%s", logs.String(), want)
	}
}
