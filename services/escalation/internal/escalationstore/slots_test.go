package escalationstore

import (
	"context"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/ticketlog"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// casScript is given a subject's pointer, the ticket's event log (a ticket subject) and the
// record it replaces: one hash slot whatever the ids, so the script runs on a Redis Cluster
// (DESIGN, Redis layout). The index is written beside it, not in it.
func TestCASKeysShareASlot(t *testing.T) {
	_, c := testenv.RedisCluster(t)
	ctx := context.Background()
	ids := []string{"T-1", "Zoë Ünïcode 名前", "a b/c", `"quoted"`, "<script>alert(1)</script>", "{brace}", "}{", "x}y{z", "a:b", ""}
	for _, tenant := range []string{"acme", "t_9-x"} {
		for _, id := range ids {
			for _, kind := range []string{Ticket, Agent, Team, Queue} {
				s := Subject{Kind: kind, ID: id}
				keys := []string{pointerKey(tenant, "first-reply", s), recordKey(tenant, "first-reply", s, 1), recordKey(tenant, "sla breach", s, 12)}
				if kind == Ticket {
					keys = append(keys, ticketlog.Key(ticketlog.Ticket{Tenant: tenant, ID: id}))
				}
				want, err := c.ClusterKeySlot(ctx, keys[0]).Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys[1:] {
					if got, err := c.ClusterKeySlot(ctx, k).Result(); err != nil || got != want {
						t.Errorf("%s %s %q: %q in slot %d (%v), %q in slot %d", tenant, kind, id, k, got, err, keys[0], want)
					}
				}
			}
		}
	}
}
