package app

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// With -compact-after, the running service compacts a solved ticket once it is quiet, a
// redelivered event changes nothing and a late one is counted in kpi_events_too_late_total; the
// KPIs stay those of the ticket's original events.
func TestServiceCompactsQuietTickets(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ctx := context.Background()
	ts := servicetest.WriteTenants(t, nil)
	cfg := Config{
		Common:  servicetest.Settings(s.natsURL, s.redisURL),
		Consume: consume.Settings{Durable: "kpi", BatchMax: 200, Linger: time.Millisecond, AckWait: 2 * time.Second},
		Workers: 2, SuspectAfter: 5,
		SLA: contrib.DefaultSLA(), SnapshotInterval: 100 * time.Millisecond, StreamReplicas: 1, RollupInterval: time.Second,
		CompactAfter: time.Second, CompactInterval: 100 * time.Millisecond,
	}
	cfg.TenantsFile = ts.File
	r := servicetest.Start(t, func(ctx context.Context, h service.Hooks) error { return Deps{Hooks: h}.Run(ctx, cfg, quiet) })
	defer r.Stop()
	client := tpv1.NewKpiServiceClient(r.DialAs(ts.Acme))

	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	events := jsonEvents("T-1", start)
	publishEvents(t, js, events)
	w := window(start, start.Add(24*time.Hour))
	waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool { return k.GetCsatCount() == 1 })

	key := store.TicketKey("acme", "T-1")
	deadline := time.Now().Add(15 * time.Second)
	for {
		// A tombstone (state format 4) has only a version, a state and the drill-down row it keeps.
		if f, _ := s.rdb.HKeys(ctx, key).Result(); len(f) >= 2 && !slices.Contains(f, "t") {
			if st, _ := s.rdb.HGet(ctx, key, "s").Result(); len(st) > 0 && st[0] == 4 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the solved ticket was never compacted")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The messages are deduplicated by JetStream within its window: publish copies under new
	// message ids, as a redelivery from the source after that window would arrive.
	resend := func(evs []map[string]any, tag string) {
		for _, m := range evs {
			ev := toProto(t, m)
			data, err := marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			msg := nats.NewMsg("tickets.acme." + strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")))
			msg.Data = data
			msg.Header.Set(jetstream.MsgIDHeader, "acme/generic/"+ev.GetId()+"/"+tag)
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	resend(events, "again")
	rerate := map[string]any{"id": "T-1-q2", "ticket_id": "T-1", "type": "satisfaction_rated",
		"occurred_at": start.Add(200 * time.Minute).Format(time.RFC3339),
		"actor":       map[string]any{"id": "cust", "kind": "customer"}, "satisfaction": map[string]any{"score": 1}}
	resend([]map[string]any{rerate}, "late")

	want := map[string]string{"kpi_tombstone_duplicates_total": "5", "kpi_events_too_late_total": "1", "kpi_tickets_compacted_total": "1"}
	deadline = time.Now().Add(15 * time.Second)
	for {
		got := scrape(t, r.HTTPClient(), r.AdminURL("/metrics"), want)
		if len(got) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never reached %v; got %v", want, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	k := waitKpis(t, client, "acme", w, func(*tpv1.Kpis) bool { return true })
	checkFigures(t, k, 1)
}

// scrape returns the counters of want whose value on the metrics page equals want's.
func scrape(t *testing.T, c *http.Client, url string, want map[string]string) map[string]string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		if w, ok := want[name]; ok && value == w {
			got[name] = value
		}
	}
	return got
}
