package app

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Calls through the running service, real NATS and Redis, the tenant's service-level threshold
// (30 s) from the rules file. A call linked to ticket T-1 is answered by ana after 25 s: within
// 30 s (not the default 20 s), and T-1's first response, credited to ana at the answer. A call
// with no ticket whose call id is also "T-1" counts as a call and leaves ticket T-1 alone; one
// abandoned in queue counts for the team and the unassigned figures. The events arrive out of
// order, one of them twice: the figures are those of the set.
func TestServiceCalls(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeRules(t, path, "tenants:\n  acme:\n    call_service_level: 30s\n")
	ts := servicetest.WriteTenants(t, nil)
	cfg := Config{
		Common:  servicetest.Settings(s.natsURL, s.redisURL),
		Consume: consume.Settings{Durable: "kpi", BatchMax: 200, Linger: time.Millisecond, AckWait: 2 * time.Second},
		Workers: 2, SuspectAfter: 5,
		SLA: contrib.DefaultSLA(), SnapshotInterval: 100 * time.Millisecond, StreamReplicas: 1, RollupInterval: time.Second,
		RulesFile: path, RulesReload: time.Second, RebuildGrace: 500 * time.Millisecond, RebuildLease: 2 * time.Second,
		CompactAfter: time.Second, CompactInterval: 100 * time.Millisecond,
	}
	cfg.TenantsFile = ts.File
	r := servicetest.Start(t, func(ctx context.Context, h service.Hooks) error { return Deps{Hooks: h}.Run(ctx, cfg, quiet) })
	defer r.Stop()
	client := tpv1.NewKpiServiceClient(r.DialAs(ts.Acme))

	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	in := tpv1.CallDirection_CALL_DIRECTION_INBOUND
	call := func(id, ticket string, typ tpv1.EventType, after time.Duration, k *tpv1.CallInfo) *tpv1.TicketEvent {
		return &tpv1.TicketEvent{Id: id, Tenant: "acme", Source: "generic", TicketId: ticket, Type: typ,
			OccurredAt: timestamppb.New(start.Add(after)), Actor: &tpv1.Actor{Kind: tpv1.ActorKind_ACTOR_KIND_SYSTEM}, Call: k}
	}
	linked := func(agent string, wait, talk, hold, wrap float64) *tpv1.CallInfo {
		return &tpv1.CallInfo{CallId: "CA-1", TicketId: "T-1", AgentId: agent, TeamId: "phones", QueueId: "support", Direction: in,
			WaitSeconds: wait, TalkSeconds: talk, HoldSeconds: hold, WrapUpSeconds: wrap}
	}
	unlinked := func(id, agent string, talk float64) *tpv1.CallInfo {
		return &tpv1.CallInfo{CallId: id, AgentId: agent, TeamId: "phones", Direction: in, TalkSeconds: talk}
	}
	created := toProto(t, map[string]any{"id": "T-1-c", "ticket_id": "T-1", "type": "ticket_created", "occurred_at": start.Format(time.RFC3339),
		"actor": map[string]any{"id": "cust", "kind": "customer"}, "assignee_id": "bo", "team_id": "billing"})
	events := []struct {
		ev    *tpv1.TicketEvent
		msgID string
	}{
		// Out of order: each call's end first, its offer last.
		{call("CA-1-e", "T-1", tpv1.EventType_EVENT_TYPE_CALL_ENDED, 10*time.Minute, linked("ana", 0, 240, 30, 30)), "1"},
		{call("CA-1-a", "T-1", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 5*time.Minute+25*time.Second, linked("ana", 25, 0, 0, 0)), "2"},
		{created, "3"},
		{call("CA-1-o", "T-1", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 5*time.Minute, linked("", 0, 0, 0, 0)), "4"},
		{call("X-e", "T-1", tpv1.EventType_EVENT_TYPE_CALL_ENDED, 32*time.Minute, unlinked("T-1", "ana", 100)), "5"},
		{call("X-a", "T-1", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 30*time.Minute+10*time.Second, unlinked("T-1", "ana", 0)), "6"},
		{call("X-o", "T-1", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 30*time.Minute, unlinked("T-1", "", 0)), "7"},
		{call("CA-2-x", "CA-2", tpv1.EventType_EVENT_TYPE_CALL_ABANDONED, 21*time.Minute, unlinked("CA-2", "", 0)), "8"},
		{call("CA-2-o", "CA-2", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 20*time.Minute, unlinked("CA-2", "", 0)), "9"},
		// A redelivery after the duplicate window: the same event under a new message id.
		{call("CA-1-a", "T-1", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 5*time.Minute+25*time.Second, linked("ana", 25, 0, 0, 0)), "2-again"},
	}
	for _, e := range events {
		data, err := marshal(e.ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg("tickets.acme." + eventcodec.TypeWord(e.ev.GetType()))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, e.msgID)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}

	w := window(start, start.Add(24*time.Hour))
	// Wait for the figures that only the last of each call's events complete: an end with talk
	// time already counts as handled before its call's answer and offer are consumed.
	k := waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool {
		return k.GetCallHandleTime().GetCount() == 2 && k.GetFirstResponse().GetCount() == 1 &&
			k.GetCallsAnswered() == 2 && k.GetCallSpeedOfAnswer().GetCount() == 2
	})
	asa, aht := k.GetCallSpeedOfAnswer(), k.GetCallHandleTime()
	checks := []struct {
		name      string
		got, want float64
	}{
		{"calls_offered", float64(k.GetCallsOffered()), 2},
		{"calls_answered", float64(k.GetCallsAnswered()), 2},
		{"calls_abandoned", float64(k.GetCallsAbandoned()), 0},
		{"calls_answered_in_service_level (25 s and 10 s within 30 s)", float64(k.GetCallsAnsweredInServiceLevel()), 2},
		{"call_service_level", k.GetCallServiceLevel(), 1},
		{"call_speed_of_answer.count", float64(asa.GetCount()), 2},
		{"call_speed_of_answer.mean", asa.GetMeanSeconds(), 17.5},
		{"call_speed_of_answer.p90", asa.GetP90Seconds(), 25},
		{"call_handle_time.count", float64(aht.GetCount()), 2},
		{"call_handle_time.mean", aht.GetMeanSeconds(), 200},
		{"call_handle_time.p99", aht.GetP99Seconds(), 300},
		{"first_response.count (the answered linked call)", float64(k.GetFirstResponse().GetCount()), 1},
		{"first_response.mean", k.GetFirstResponse().GetMeanSeconds(), 325},
		{"assigned (the ticket is bo's)", float64(k.GetAssigned()), 0},
	}
	for _, c := range checks {
		// Percentiles are within the histograms' 1 %.
		if math.Abs(c.got-c.want) > 0.01*c.want+1e-9 {
			t.Errorf("ana %s = %v, want %v", c.name, c.got, c.want)
		}
	}

	team, err := client.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: "phones", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if tk := team.GetKpis(); tk.GetCallsOffered() != 3 || tk.GetCallsAbandoned() != 1 || math.Abs(tk.GetCallAbandonRate()-1.0/3) > 1e-9 ||
		math.Abs(tk.GetCallServiceLevel()-2.0/3) > 1e-9 || tk.GetFirstResponse().GetCount() != 0 {
		t.Errorf("team phones = %v; want 3 offered, 1 abandoned (rate 1/3), service level 2/3, no ticket figures", tk)
	}
	billing, err := client.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: "billing", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if bk := billing.GetKpis(); bk.GetFirstResponse().GetCount() != 1 || bk.GetCallsOffered() != 0 || bk.GetAssigned() != 1 {
		t.Errorf("team billing = %v; want T-1 assigned and first-answered once, no calls", bk)
	}
	bo, err := client.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: "bo", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if bk := bo.GetAgent().GetKpis(); bk.GetFirstResponse().GetCount() != 0 || bk.GetAssigned() != 1 || bk.GetCallsOffered() != 0 {
		t.Errorf("bo = %v; want T-1 assigned, no response and no call", bk)
	}

	// The abandoned call with no ticket is done: it is compacted like a solved ticket, and a
	// redelivery of its events changes nothing. The linked call's ticket is open and stays.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, _ := s.rdb.HGet(ctx, store.TicketKey("acme", contrib.CallState("CA-2")), "s").Result(); len(st) > 0 && st[0] == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ended call was never compacted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, _ := s.rdb.HGet(ctx, store.TicketKey("acme", "T-1"), "s").Result(); len(st) == 0 || st[0] == 4 {
		t.Errorf("open ticket T-1's state is %q; want it kept", st)
	}

	// Rebuilt from the event log into fresh keys, the calls give the same figures.
	admin := tpv1.NewKpiAdminServiceClient(r.DialAs(ts.Operator))
	if _, err := admin.StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if st := waitJob(t, s.rdb, 30*time.Second); st.Result != "done" {
		t.Fatalf("rebuild: %+v", st)
	}
	rebuilt := waitKpis(t, client, "acme", w, func(*tpv1.Kpis) bool { return true })
	if !proto.Equal(rebuilt, k) {
		t.Errorf("after the rebuild ana has\n %v\nbefore\n %v", rebuilt, k)
	}
}
