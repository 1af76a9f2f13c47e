package store

import (
	"context"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// A call's queue is a scope like a team: the write path lists it in the day's and the tenant's
// queue sets, and the rollup derives its day, week, month and year totals, each equal to the
// sum of its hours (here the team's, since the queue holds the team's calls).
func TestQueueIsListedAndRolledUp(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	const queue = "sales: {EU} ünï"
	call := func(id string, typ tpv1.EventType, minutes int, agent string, talk uint32) contrib.Event {
		return contrib.Event{Key: contrib.KeyOf(id), Type: typ, AtMillis: t0.Add(time.Duration(minutes) * time.Minute).UnixMilli(),
			CallKey: contrib.KeyOf("CA-1"), CallDir: tpv1.CallDirection_CALL_DIRECTION_INBOUND, CallAgent: agent, CallTeam: "phones",
			CallQueue: queue, CallTalk: talk}
	}
	w := NewWriter(rdb, sla, 0, quiet)
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: contrib.CallState("CA-1"), Events: []contrib.Event{
		call("CA-1/o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 0, "", 0),
		call("CA-1/a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 1, "ana", 0),
		call("CA-1/e", tpv1.EventType_EVENT_TYPE_CALL_ENDED, 70, "ana", 240_000),
	}}}); err != nil {
		t.Fatal(err)
	}
	day := t0.Unix() / 86400
	for _, key := range []string{bucket.QueuesKey("acme", day), bucket.AllQueuesKey("acme")} {
		if ok, err := rdb.SIsMember(ctx, key, idtoken.Escape(queue)).Result(); err != nil || !ok {
			t.Errorf("%s does not list the queue (%v)", key, err)
		}
	}
	if n, _ := rdb.SCard(ctx, bucket.TeamsKey("acme", day)).Result(); n != 1 {
		t.Errorf("the day's team set has %d members, want phones alone: a queue is not a team", n)
	}
	if _, err := NewRollup(rdb, 0).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	qs := bucket.Scope{Kind: bucket.Queue, ID: queue}
	hours := dayTotals(t, rdb, qs, t0)
	if hours.C[bucket.CallsOffered] != 1 || hours.C[bucket.CallHandleCount] != 1 || hours.C[bucket.CallHandleSumMillis] != 240_000 {
		t.Fatalf("the queue's hours hold %v; want the call offered and handled for 240 s", hours.C)
	}
	if team := dayTotals(t, rdb, bucket.Scope{Kind: bucket.Team, ID: "phones"}, t0); team.C != hours.C {
		t.Errorf("queue %v, team %v: the same call", hours.C, team.C)
	}
	for name, key := range map[string]string{
		"day":   bucket.DayTotalsKey("acme", qs, day),
		"week":  bucket.WeekTotalsKey("acme", qs, bucket.WeekOf(day)),
		"month": bucket.MonthTotalsKey("acme", qs, bucket.MonthOf(day)),
		"year":  bucket.YearTotalsKey("acme", qs, bucket.YearOf(day)),
	} {
		s, err := rdb.Get(ctx, key).Result()
		if err != nil {
			t.Errorf("%s totals %s: %v", name, key, err)
			continue
		}
		tot := bucket.NewTotals()
		if err := tot.AddPacked(s); err != nil {
			t.Fatal(err)
		}
		if tot.C != hours.C {
			t.Errorf("%s totals %v, want the hours' %v", name, tot.C, hours.C)
		}
	}
}
