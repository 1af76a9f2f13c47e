package consumerlag

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// collect reads every gauge of r as name -> durable -> value.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = map[string]float64{}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[m.Name][durable(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[m.Name][durable(p.Attributes)] = p.Value
				}
			}
		}
	}
	return out
}

func durable(s attribute.Set) string {
	v, _ := s.Value("messaging.consumer.group.name")
	st, _ := s.Value("messaging.destination.name")
	sys, _ := s.Value("messaging.system")
	return sys.AsString() + ":" + st.AsString() + "/" + v.AsString()
}

func TestObserve(t *testing.T) {
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, jetstream.StreamConfig{Name: "TICKETS", Subjects: []string{"tickets.>"}})
	ctx := context.Background()
	for _, name := range []string{"kpi", "escalation"} {
		if _, err := js.CreateOrUpdateConsumer(ctx, "TICKETS", jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy,
			FilterSubject: "tickets.>", AckWait: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if _, err := js.Publish(ctx, "tickets.acme.created", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// kpi takes 3 and acknowledges the first; escalation takes nothing.
	kpi, _ := js.Consumer(ctx, "TICKETS", "kpi")
	batch, err := kpi.FetchNoWait(3)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 3 {
		t.Fatalf("fetched %d messages; want 3", len(msgs))
	}
	if err := msgs[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	stored, _ := msgs[1].Metadata()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	now := time.Now().Add(90 * time.Second)
	o := Durable{Stream: "TICKETS", Name: "kpi", Filter: "tickets.>"}
	if err := Observe(mp.Meter("test"), js, slog.New(slog.NewTextHandler(io.Discard, nil)), o,
		Durable{Stream: "TICKETS", Name: "escalation"}, Durable{Stream: "TICKETS", Name: "missing"}); err != nil {
		t.Fatal(err)
	}
	setNow(t, now)
	got := collect(t, reader)

	const k, e = "nats:TICKETS/kpi", "nats:TICKETS/escalation"
	want := map[string]map[string]float64{
		PendingName:     {k: 2, e: 5},
		AckPendingName:  {k: 2, e: 0},
		RedeliveredName: {k: 0, e: 0},
	}
	for name, w := range want {
		if len(got[name]) != len(w) || got[name][k] != w[k] || got[name][e] != w[e] {
			t.Errorf("%s = %v; want %v (the missing durable left out)", name, got[name], w)
		}
	}
	// kpi's oldest unacknowledged is its second message; escalation's is the stream's first.
	if a, want := got[OldestAgeName][k], now.Sub(stored.Timestamp).Seconds(); a < want-0.01 || a > want+0.01 {
		t.Errorf("kpi oldest unacked age %.3f s; want %.3f", a, want)
	}
	if a := got[OldestAgeName][e]; a < 89 || a > 100 {
		t.Errorf("escalation oldest unacked age %.3f s; want about 90", a)
	}

	// kpi acknowledges a message. An observer of durables that all exist reports its last
	// reading within MinInterval, without asking the server; one that missed a durable reads
	// again at once.
	cached := sdkmetric.NewManualReader()
	cmp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(cached))
	defer cmp.Shutdown(ctx)
	if err := Observe(cmp.Meter("test"), js, slog.New(slog.NewTextHandler(io.Discard, nil)), o); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, cached); got[AckPendingName][k] != 2 {
		t.Fatalf("ack pending %v; want 2", got[AckPendingName][k])
	}
	if err := msgs[1].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, cached); got[AckPendingName][k] != 2 {
		t.Errorf("ack pending %v within MinInterval; want the cached 2", got[AckPendingName][k])
	}
	if got := collect(t, reader); got[AckPendingName][k] != 1 {
		t.Errorf("ack pending %v after a reading that missed a durable; want 1 read again", got[AckPendingName][k])
	}
	setNow(t, now.Add(MinInterval))
	if got := collect(t, cached); got[AckPendingName][k] != 1 {
		t.Errorf("ack pending %v after MinInterval; want 1", got[AckPendingName][k])
	}

	// Caught up on what it took, kpi still has 2 not delivered: its oldest unacked is the 4th.
	if err := msgs[2].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	setNow(t, now.Add(2*MinInterval))
	got = collect(t, cached)
	if got[AckPendingName][k] != 0 || got[PendingName][k] != 2 || got[OldestAgeName][k] < 90 {
		t.Errorf("after acks: ack pending %v, pending %v, age %v; want 0, 2, > 90 s", got[AckPendingName][k], got[PendingName][k], got[OldestAgeName][k])
	}
}

// setNow makes the observer registered last see now as the time.
func setNow(t *testing.T, now time.Time) {
	t.Helper()
	testNow = func() time.Time { return now }
	t.Cleanup(func() { testNow = nil })
}

// A user that may not read stream messages still gets the counts; the age is left out and
// logged, and the collection takes no longer than ReadTimeout.
func TestAgeNotReadable(t *testing.T) {
	_, url := testenv.NATSWith(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "kpi", Password: "pw", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.STREAM.MSG.GET.>", "$JS.API.DIRECT.GET.>"}},
		}}}
	})
	js := testenv.JetStream(t, strings.Replace(url, "nats://", "nats://kpi:pw@", 1), jetstream.StreamConfig{Name: "TICKETS", Subjects: []string{"tickets.>"}})
	ctx := context.Background()
	if _, err := js.CreateOrUpdateConsumer(ctx, "TICKETS", jetstream.ConsumerConfig{Durable: "kpi", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "tickets.acme.created", []byte("x")); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	logs := &testenv.LogBuffer{}
	if err := Observe(mp.Meter("test"), js, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Durable{Stream: "TICKETS", Name: "kpi"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := collect(t, reader)
	if took := time.Since(start); took > ReadTimeout+time.Second {
		t.Errorf("collection took %s; want at most about ReadTimeout (%s)", took, ReadTimeout)
	}
	const k = "nats:TICKETS/kpi"
	if got[PendingName][k] != 1 {
		t.Errorf("pending %v; want 1", got[PendingName])
	}
	if _, ok := got[OldestAgeName][k]; ok {
		t.Errorf("an age was reported without reading the message: %v", got[OldestAgeName])
	}
	if want := `msg="oldest unacknowledged message not read" stream=TICKETS durable=kpi`; !strings.Contains(logs.String(), want) {
		t.Errorf("log %q lacks %q", logs.String(), want)
	}
}
