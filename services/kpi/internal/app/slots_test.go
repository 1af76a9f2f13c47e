package app

import (
	"context"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/generation"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// oddIDs are helpdesk ids that could break a hash tag if a key builder did not escape them.
var oddIDs = []string{"ana", "Zoë Ünïcode 名前", "a b/c", `"quoted"`, "<script>alert(1)</script>", "{brace}", "}{", "x}y{z", "a:b", ""}

// Every script and MULTI of kpi touches keys of one hash slot, whatever the ids (DESIGN, Redis
// layout): each group below is what one script is given, built by the real key builders, and
// the cluster's CLUSTER KEYSLOT must put them all in one slot.
func TestKeysOfEachScriptShareASlot(t *testing.T) {
	_, c := testenv.RedisCluster(t)
	ctx := context.Background()
	const day, week, month, year = 20514, 2930, 674, 56
	groups := map[string][]string{}
	for _, ks := range []string{"acme", generation.Keyspace("acme", 3), "t_9-x"} {
		for _, id := range oddIDs {
			for _, s := range []bucket.Scope{{Kind: bucket.Agent, ID: id}, {Kind: bucket.Team, ID: id}, {Kind: bucket.Queue, ID: id}, {Kind: bucket.Unassigned}, {Kind: bucket.Tenant}} {
				// applyScript, totalsScript, periodScript and the query's readScript: one scope's
				// marks, hours, totals, drill-down index, first hour and generation.
				groups["scope "+ks+" "+s.Tag(ks)] = []string{
					bucket.MarkKey(ks, s, day), bucket.MarkKey(ks, s, day-1), bucket.HourKey(ks, s, day), bucket.DayTotalsKey(ks, s, day),
					bucket.WeekTotalsKey(ks, s, week), bucket.MonthTotalsKey(ks, s, month), bucket.YearTotalsKey(ks, s, year),
					bucket.TicketIndexKey(ks, s, day), bucket.FirstKey(ks, s), bucket.GenKey(ks, s),
				}
			}
			// indexScript and the query's unionScript: the tenant's listing sets with their
			// generation; the rollup's queues and the compactor's resolved set live there too.
			groups["index "+ks+" "+id] = []string{
				bucket.IndexGenKey(ks), bucket.AgentsKey(ks, day), bucket.TeamAgentsKey(ks, id, day), bucket.TeamsKey(ks, day),
				bucket.QueuesKey(ks, day), bucket.AllAgentsKey(ks), bucket.AllTeamsKey(ks), bucket.AllQueuesKey(ks), bucket.ToSealKey(ks), bucket.ToPackKey(ks), bucket.ToMonthKey(ks),
				bucket.ToYearKey(ks), store.ResolvedKey(ks),
			}
		}
		// The generation scripts: the tenant's state hash alone.
		groups["generation "+ks] = []string{generation.StateKey(ks)}
	}
	groups["jobs"] = []string{generation.JobsKey}
	for name, keys := range groups {
		want, err := c.ClusterKeySlot(ctx, keys[0]).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys[1:] {
			if got, err := c.ClusterKeySlot(ctx, k).Result(); err != nil || got != want {
				t.Errorf("%s: %q in slot %d (%v), %q in slot %d", name, k, got, err, keys[0], want)
			}
		}
	}
	// casScript and compactScript take a ticket's state hash alone. Scopes and tickets are spread
	// over slots, not all in one: ids must reach the hash tag.
	a, _ := c.ClusterKeySlot(ctx, bucket.HourKey("acme", bucket.Scope{Kind: bucket.Agent, ID: "ana"}, day)).Result()
	b, _ := c.ClusterKeySlot(ctx, bucket.HourKey("acme", bucket.Scope{Kind: bucket.Agent, ID: "bob"}, day)).Result()
	if a == b {
		t.Errorf("agents ana and bob share slot %d: the id is not in the hash tag", a)
	}
	a, _ = c.ClusterKeySlot(ctx, bucket.HourKey("acme", bucket.Scope{Kind: bucket.Queue, ID: "support"}, day)).Result()
	b, _ = c.ClusterKeySlot(ctx, bucket.HourKey("acme", bucket.Scope{Kind: bucket.Queue, ID: "sales"}, day)).Result()
	if a == b {
		t.Errorf("queues support and sales share slot %d: the id is not in the hash tag", a)
	}
	a, _ = c.ClusterKeySlot(ctx, store.TicketKey("acme", "T-1")).Result()
	b, _ = c.ClusterKeySlot(ctx, store.TicketKey("acme", "T-2")).Result()
	if a == b {
		t.Errorf("tickets T-1 and T-2 share slot %d: the id is not in the hash tag", a)
	}
}
