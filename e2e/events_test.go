package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// totalsKeys are the Redis keys of an agent's packed totals of a UTC day and of its week, as
// docs/architecture.md lays them out: tp:{<tenant>:a:<agent>}:dt:<day> and :wt:<week>, days
// counted from the Unix epoch and weeks from Monday (day 4 of the epoch starts week 1).
func totalsKeys(tenant, agent string, at time.Time) (day, week string) {
	d := at.Unix() / 86400
	w := (d + 3) / 7 // d is after the epoch, so the division needs no flooring
	tag := "tp:{" + tenant + ":a:" + agent + "}"
	return fmt.Sprintf("%s:dt:%d", tag, d), fmt.Sprintf("%s:wt:%d", tag, w)
}

// HTTP POST → ingest → JetStream → kpi → Redis → gRPC, with last year's tickets (a backfill), and the
// same POST again (the sender's retry) changing nothing.
func TestEventsToKpis(t *testing.T) { eventsToKpis(t, newStack(t)) }

// eventsToKpis is TestEventsToKpis on the stack s.
func eventsToKpis(t *testing.T, s stack) {
	ingest := startIngest(t, s)
	kpi := startKPI(t, s)
	client := kpi.as(s.tenants.Acme)

	start := time.Date(2025, 11, 3, 8, 0, 0, 0, time.UTC)
	var events []map[string]any
	for i := 0; i < 20; i++ {
		events = append(events, jsonEvents(fmt.Sprintf("T-%d", i), start.Add(time.Duration(i)*time.Minute))...)
	}
	// Without a key, or with another tenant's, nothing gets in.
	if status, body := postAs(t, ingest, "acme", "", events); status != http.StatusUnauthorized {
		t.Fatalf("POST without a key: %d %s, want 401", status, body)
	}
	if status, body := postAs(t, ingest, "acme", s.tenants.Globex, events); status != http.StatusForbidden {
		t.Fatalf("POST with globex's key: %d %s, want 403", status, body)
	}
	post(t, ingest, "acme", s.tenants.AcmeEvents, events)
	w := window(start, start.Add(24*time.Hour))
	k := waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool { return k.GetCsatCount() == 20 })
	checkFigures(t, k, 20)

	post(t, ingest, "acme", s.tenants.AcmeEvents, events) // the helpdesk retries the whole delivery
	time.Sleep(500 * time.Millisecond)
	k = waitKpis(t, client, "acme", w, func(*tpv1.Kpis) bool { return true })
	checkFigures(t, k, 20)

	// Each event lands in its own hour: the hour of the replies holds the first responses only.
	hour := window(start.Add(10*time.Minute).Truncate(time.Hour), start.Add(time.Hour))
	k = waitKpis(t, client, "acme", hour, func(*tpv1.Kpis) bool { return true })
	if k.GetFirstResponse().GetCount() != 20 || k.GetResolution().GetCount() != 0 {
		t.Errorf("hour of the replies: first responses %d (want 20), resolutions %d (want 0)",
			k.GetFirstResponse().GetCount(), k.GetResolution().GetCount())
	}
	// A month around it reads whole weeks and days: the rollup derives the backfilled day's and
	// week's totals (the write path queued them) and the figures read from them are the same.
	dayKey, weekKey := totalsKeys("acme", "ana", start)
	for _, key := range []string{dayKey, weekKey} {
		deadline := time.Now().Add(15 * time.Second)
		for s.rdb.Exists(context.Background(), key).Val() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the rollup never derived %s", key)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	month := window(start.AddDate(0, 0, -14), start.AddDate(0, 0, 14))
	checkFigures(t, waitKpis(t, client, "acme", month, func(*tpv1.Kpis) bool { return true }), 20)

	// Other tenants see nothing, and acme's key reads nothing of theirs.
	other := waitKpis(t, kpi.as(s.tenants.Globex), "globex", w, func(*tpv1.Kpis) bool { return true })
	if other.GetAssigned() != 0 {
		t.Errorf("tenant globex sees %d assignments of acme", other.GetAssigned())
	}
	_, err := client.GetAgentKpis(context.Background(), &tpv1.GetAgentKpisRequest{Tenant: "globex", AgentId: "ana", Window: w})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("acme's key reading globex: %v, want PermissionDenied", err)
	}
}
