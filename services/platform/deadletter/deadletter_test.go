package deadletter

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestPublish(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(mp)
	t.Cleanup(func() { otel.SetMeterProvider(prev) })
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Deadletter(1))
	ctx := context.Background()
	tests := []struct {
		name        string
		give        Letter
		wantSubject string
		wantHeaders map[string]string
	}{
		{
			name: "consumed message",
			give: Letter{Service: "kpi", Tenant: "acme", Data: []byte("body"), Reason: "undecodable", Err: errors.New("invalid message: no occurred_at"),
				Subject: "tickets.acme.agent_message", StreamSeq: 42, MsgID: "kpi-kpi-42"},
			wantSubject: "deadletter.kpi.acme",
			wantHeaders: map[string]string{HeaderReason: "undecodable", HeaderError: "invalid message: no occurred_at",
				HeaderSubject: "tickets.acme.agent_message", HeaderStreamSeq: "42", HeaderDelivery: "", jetstream.MsgIDHeader: "kpi-kpi-42"},
		},
		{
			name:        "failed delivery",
			give:        Letter{Service: "notify", Tenant: "globex", Data: []byte("{}"), Reason: "deadline 1h passed", Delivery: "d-1", MsgID: "notify-globex-d-1"},
			wantSubject: "deadletter.notify.globex",
			wantHeaders: map[string]string{HeaderReason: "deadline 1h passed", HeaderDelivery: "d-1", HeaderError: "",
				HeaderSubject: "", HeaderStreamSeq: "", jetstream.MsgIDHeader: "notify-globex-d-1"},
		},
		{
			name:        "tenant unknown",
			give:        Letter{Service: "escalation", Data: []byte("?"), Reason: "undecodable", Err: errors.New("bad"), Subject: "tickets.x"},
			wantSubject: "deadletter.escalation.unknown",
			wantHeaders: map[string]string{HeaderReason: "undecodable", HeaderError: "bad", HeaderSubject: "tickets.x",
				HeaderStreamSeq: "", jetstream.MsgIDHeader: ""},
		},
	}
	s, err := js.Stream(ctx, stream.DeadletterName)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Publish(ctx, js, tt.give); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetLastMsgForSubject(ctx, tt.wantSubject)
			if err != nil {
				t.Fatalf("no letter on %s: %v", tt.wantSubject, err)
			}
			if string(got.Data) != string(tt.give.Data) {
				t.Errorf("body %q, want %q", got.Data, tt.give.Data)
			}
			for k, want := range tt.wantHeaders {
				if v := got.Header.Get(k); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
		})
	}

	// A letter carries the trace of the work that gave up.
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tctx := telemetry.Extract(ctx, nats.Header{"traceparent": []string{parent}})
	traced := Letter{Service: "kpi", Tenant: "traced", Data: []byte("x"), Reason: "undecodable"}
	if err := Publish(tctx, js, traced); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetLastMsgForSubject(ctx, "deadletter.kpi.traced")
	if err != nil {
		t.Fatal(err)
	}
	if tp := got.Header.Get("traceparent"); tp != parent {
		t.Errorf("letter traceparent %q, want %q", tp, parent)
	}

	// The same letter stored twice (a retry after a lost ack) is kept once.
	before, _ := s.Info(ctx)
	if err := Publish(ctx, js, tests[1].give); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Info(ctx); after.State.Msgs != before.State.Msgs {
		t.Errorf("a repeated letter was stored again: %d -> %d messages", before.State.Msgs, after.State.Msgs)
	}

	// Each letter stored is counted once, by service and tenant; the repeated one is not.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	counted := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != MetricName {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				svc, _ := p.Attributes.Value("service")
				tenant, _ := p.Attributes.Value("tenant")
				counted[svc.AsString()+"/"+tenant.AsString()] += p.Value
			}
		}
	}
	want := map[string]int64{"kpi/acme": 1, "notify/globex": 1, "escalation/unknown": 1, "kpi/traced": 1}
	if !maps.Equal(counted, want) {
		t.Errorf("%s = %v; want %v", MetricName, counted, want)
	}
}

func TestPublishWithoutStream(t *testing.T) {
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := Publish(ctx, js, Letter{Service: "kpi", Tenant: "acme", Reason: "x"}); err == nil {
		t.Fatal("a letter with no DEADLETTER stream was acknowledged")
	}
}
