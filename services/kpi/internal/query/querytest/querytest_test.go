package querytest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

// A load written as it is generated holds the same totals and index as the same load built in
// memory, and the hourly detail of its last DetailDays days only.
func TestHistoryMatchesBuilder(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	l := Load{Agents: 9, Teams: 2, Days: 70, TicketsPerDay: 3, EndHour: 20_000*24 + 13, Seed: 3}
	b := NewBuilder("acme")
	Generate(b, l)
	if _, err := b.Flush(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	dump := func() map[string]string {
		out := map[string]string{}
		for _, k := range testenv.Keys(t, rdb, "tp:*") {
			switch rdb.Type(ctx, k).Val() {
			case "string":
				out[k] = rdb.Get(ctx, k).Val()
			case "set":
				out[k] = strings.Join(rdb.SInter(ctx, k).Val(), ",")
			case "hash":
				out[k] = "hash"
			}
		}
		return out
	}
	want := dump()
	for _, kind := range []string{":h:", ":dt:", ":wt:", ":mt:", ":yt:", ":ix}:a:"} {
		n := 0
		for k := range want {
			if strings.Contains(k, kind) {
				n++
			}
		}
		if n == 0 {
			t.Fatalf("the built load has no %s keys", kind)
		}
	}
	testenv.Flush(t, rdb)
	l.DetailDays = 5
	if _, err := history(ctx, rdb, "acme", l); err != nil {
		t.Fatal(err)
	}
	got := dump()
	firstDetail := bucket.DayOf(l.EndHour) - 4
	for k, w := range want {
		if i := strings.LastIndex(k, ":h:"); i >= 0 {
			var day int64
			for _, c := range k[i+3:] {
				day = day*10 + int64(c-'0')
			}
			if _, ok := got[k]; ok != (day >= firstDetail) {
				t.Errorf("hourly detail %s: present %v, want %v", k, ok, day >= firstDetail)
			}
			continue
		}
		if !strings.Contains(k, ":ix}") {
			// Members of sets come in any order; strings must match exactly.
			if got[k] != w {
				t.Errorf("%s = %q, want %q", k, got[k], w)
			}
		} else if len(got[k]) != len(w) {
			t.Errorf("index %s = %q, want %q", k, got[k], w)
		}
	}
	// Beyond the built load: empty months and years before the data, the rollup's lookback.
	extra := 0
	for k, v := range got {
		if _, ok := want[k]; !ok {
			if (!strings.Contains(k, ":mt:") && !strings.Contains(k, ":yt:")) || v != bucket.Pack(nil) {
				t.Errorf("extra key %s = %q", k, v)
			}
			extra++
		}
	}
	if extra == 0 {
		t.Error("no lookback months and years before the data")
	}
}
