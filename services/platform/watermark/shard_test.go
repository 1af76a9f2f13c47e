package watermark

import (
	"context"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// The slot computed here is the cluster's, and each master gets a watermark in its own slots.
func TestShardTagsOnePerMaster(t *testing.T) {
	rc, c := testenv.RedisCluster(t)
	ctx := context.Background()
	for _, tag := range []string{"wm", "wm:0", "wm:17", "acme:a:ana", "Zoë 名前", ""} {
		want, err := c.ClusterKeySlot(ctx, "{"+tag+"}x").Result()
		if tag == "" {
			// An empty tag is no tag: the whole key is hashed.
			continue
		}
		if err != nil || int64(slot(tag)) != want {
			t.Errorf("slot(%q) = %d, CLUSTER KEYSLOT %d (%v)", tag, slot(tag), want, err)
		}
	}
	tags, err := ShardTags(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 3 {
		t.Fatalf("tags %q, want one per master (3)", tags)
	}
	owners := map[string]bool{}
	for _, tag := range tags {
		m, err := rc.MasterOf(ctx, ShardKey("kpi", "kpi", tag))
		if err != nil {
			t.Fatal(err)
		}
		owners[m.Addr] = true
	}
	if len(owners) != 3 {
		t.Errorf("tags %q are held by %d masters, want 3", tags, len(owners))
	}
	if got, _ := ShardTags(ctx, testenv.RedisSingle(t)); strings.Join(got, ",") != "" || len(got) != 1 {
		t.Errorf("one server: tags %q, want the single key", got)
	}
	if Key("kpi", "kpi") != "tp:{wm}:kpi:kpi" || ShardKey("kpi", "kpi", ":2") != "tp:{wm:2}:kpi:kpi" {
		t.Errorf("keys %s, %s", Key("kpi", "kpi"), ShardKey("kpi", "kpi", ":2"))
	}
}
