package app

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// QA reviews through the running service, real NATS and Redis: a score, a re-score of the same
// review (which replaces it), a duplicate delivery (counted once), percentiles, the team's
// figures and the listing's order. The reviewed ticket is compacted before its review is
// re-scored: reviews are kept apart from the ticket's state, so a late re-score still counts.
// A rebuild from TICKETS gives the same figures.
func TestServiceQAReviews(t *testing.T) {
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
		RebuildGrace: 500 * time.Millisecond, RebuildLease: 2 * time.Second,
	}
	cfg.TenantsFile = ts.File
	r := servicetest.Start(t, func(ctx context.Context, h service.Hooks) error { return Deps{Hooks: h}.Run(ctx, cfg, quiet) })
	defer r.Stop()
	client := tpv1.NewKpiServiceClient(r.DialAs(ts.Acme))

	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	w := window(start, start.Add(24*time.Hour))
	publishEvents(t, js, jsonEvents("T-1", start))
	waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool { return k.GetCsatCount() == 1 })

	review := func(id, ticket, reviewID, agent, team string, score float64, fail bool, after time.Duration) *tpv1.TicketEvent {
		return &tpv1.TicketEvent{Id: id, Tenant: "acme", Source: "generic", TicketId: ticket, Type: tpv1.EventType_EVENT_TYPE_QA_SCORED,
			OccurredAt: timestamppb.New(start.Add(after)), Actor: &tpv1.Actor{Id: "lead", Kind: tpv1.ActorKind_ACTOR_KIND_AGENT},
			Qa: &tpv1.QaReview{ReviewId: reviewID, ReviewerId: "lead", AgentId: agent, TeamId: team, Score: score, AutoFail: fail,
				Scorecard: "Email", Categories: map[string]float64{"Tone": score}}}
	}
	// publish sends an event under a message id of its own, as a redelivery after JetStream's
	// duplicate window would arrive.
	publish := func(ev *tpv1.TicketEvent, msgID string) {
		data, err := marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg("tickets.acme.qa_scored")
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	publish(review("qa-1", "T-1", "r1", "ana", "billing", 87.5, false, 3*time.Hour), "1")
	publish(review("qa-2", "T-2", "r2", "ana", "billing", 40, true, 4*time.Hour), "2")
	publish(review("qa-3", "T-3", "r3", "ana", "billing", 100, false, 4*time.Hour), "3")
	publish(review("qa-4", "T-3", "r4", "bo", "billing", 70, false, 4*time.Hour), "4")
	publish(review("qa-3", "T-3", "r3", "ana", "billing", 100, false, 4*time.Hour), "3-again")
	waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool { return k.GetQaScore().GetCount() == 3 })

	// T-1 is solved and quiet: wait for its compaction, then re-score its review.
	key := store.TicketKey("acme", "T-1")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, _ := s.rdb.HGet(ctx, key, "s").Result(); len(st) > 0 && st[0] == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the solved ticket was never compacted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	publish(review("qa-1b", "T-1", "r1", "ana", "billing", 92.25, false, 5*time.Hour), "1b")
	// ana: r1 at 92.25 (re-scored), r2 at 40 (auto-fail), r3 at 100 once.
	k := waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool { return k.GetQaScore().GetMean() > 77 })
	q := k.GetQaScore()
	checks := []struct {
		name      string
		got, want float64
	}{
		{"qa_score.count", float64(q.GetCount()), 3},
		{"qa_score.mean", q.GetMean(), (92.25 + 40 + 100) / 3},
		{"qa_score.p50", q.GetP50(), 92.3}, // 92.25 in its bin of a tenth
		{"qa_score.p90", q.GetP90(), 100},
		{"qa_score.p99", q.GetP99(), 100},
		{"qa_auto_fails", float64(k.GetQaAutoFails()), 1},
		{"qa_auto_fail_rate", k.GetQaAutoFailRate(), 1.0 / 3},
		{"csat_count (the ticket's own figures are untouched)", float64(k.GetCsatCount()), 1},
		{"resolutions", float64(k.GetResolutions()), 1},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("ana %s = %v, want %v", c.name, c.got, c.want)
		}
	}

	team, err := client.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: "billing", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if tq := team.GetKpis().GetQaScore(); tq.GetCount() != 4 || math.Abs(tq.GetMean()-(92.25+40+100+70)/4) > 1e-9 || tq.GetP50() != 70 {
		t.Errorf("team billing qa_score = %v, want 4 reviews, mean 75.5625, p50 70", tq)
	}

	list, err := client.ListAgentKpis(ctx, &tpv1.ListAgentKpisRequest{Tenant: "acme", Window: w, OrderBy: "qa_score_mean desc"})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, a := range list.GetAgents() {
		order = append(order, a.GetAgentId())
	}
	if !slices.Equal(order, []string{"ana", "bo"}) {
		t.Errorf("agents by qa_score_mean desc: %q, want ana (77.42) then bo (70)", order)
	}

	// Rebuilt from the event log into fresh keys, the reviews give the same figures.
	admin := tpv1.NewKpiAdminServiceClient(r.DialAs(ts.Operator))
	if _, err := admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if st := waitJob(t, s.rdb, 30*time.Second); st.Result != "done" {
		t.Fatalf("rebuild: %+v", st)
	}
	rebuilt := waitKpis(t, client, "acme", w, func(*tpv1.Kpis) bool { return true })
	if !proto.Equal(rebuilt.GetQaScore(), k.GetQaScore()) || rebuilt.GetQaAutoFails() != k.GetQaAutoFails() {
		t.Errorf("after the rebuild qa_score %v, auto-fails %d; before %v, %d", rebuilt.GetQaScore(), rebuilt.GetQaAutoFails(), k.GetQaScore(), k.GetQaAutoFails())
	}
}
