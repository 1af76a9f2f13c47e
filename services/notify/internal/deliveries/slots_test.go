package deliveries

import (
	"context"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Each script and MULTI of the delivery log and the groups touches one hash slot whatever the
// ids (DESIGN, Redis layout): createScript a delivery, its attempts and the tenant's index; the
// attempt MULTI the delivery and its attempts; addScript a group and its seen marker.
func TestScriptKeysShareASlot(t *testing.T) {
	_, c := testenv.RedisCluster(t)
	ctx := context.Background()
	ids := []string{"d-1", "Zoë Ünïcode 名前", "a b/c", `"quoted"`, "<script>alert(1)</script>", "{brace}", "}{", "x}y{z", "a:b", ""}
	for _, tenant := range []string{"acme", "t_9-x"} {
		for _, id := range ids {
			groups := map[string][]string{
				"create":  {recordKey(tenant, id), recordKey(tenant, id) + ":a", indexKey(tenant)},
				"attempt": {recordKey(tenant, id) + ":a", recordKey(tenant, id)},
				"add":     {groupKey(tenant, id), seenKey(tenant, id, id+"/change")},
			}
			for name, keys := range groups {
				want, err := c.ClusterKeySlot(ctx, keys[0]).Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys[1:] {
					if got, err := c.ClusterKeySlot(ctx, k).Result(); err != nil || got != want {
						t.Errorf("%s %s %q: %q in slot %d (%v), %q in slot %d", name, tenant, id, k, got, err, keys[0], want)
					}
				}
			}
		}
	}
}
