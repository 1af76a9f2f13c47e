package measure

import (
	"bytes"
	"strings"
	"testing"
)

func TestDurable(t *testing.T) {
	mk := func(label, sync string, visible, raw float64, drained bool) *Result {
		return &Result{
			Label:     label,
			Settings:  Settings{Batch: 100, Posters: 8, Sync: sync},
			JetStream: &Rate{PerSec: raw},
			Pipeline:  &Pipeline{VisibleRate: visible, Drained: drained},
		}
	}
	tests := []struct {
		name string
		give *Result
		want *Durable // nil: no durable figure
		line string
	}{
		{name: "met", give: mk("a", "always", 16000, 5000, true), want: &Durable{Rate: 16000, Raw: 5000, Ratio: 3.2, Batch: 100, GoalOK: true},
			line: "durable        sync always: 16,000 events/s POST of 100 → KPI-visible = 3.200 × raw one-fsync-per-message publish (5,000 msgs/s); goal ≥ 15,000 events/s and ≥ 2 ×: met\n"},
		{name: "rate short of the goal", give: mk("a", "always", 14000, 5000, true), want: &Durable{Rate: 14000, Raw: 5000, Ratio: 2.8, Batch: 100},
			line: "durable        sync always: 14,000 events/s POST of 100 → KPI-visible = 2.800 × raw one-fsync-per-message publish (5,000 msgs/s); goal ≥ 15,000 events/s and ≥ 2 ×: NOT met\n"},
		{name: "ratio short of the goal", give: mk("a", "always", 16000, 9000, true), want: &Durable{Rate: 16000, Raw: 9000, Ratio: 16000.0 / 9000, Batch: 100}},
		{name: "not drained is a lower bound, not a met goal", give: mk("a", "always", 16000, 5000, false), want: &Durable{Rate: 16000, Raw: 5000, Ratio: 3.2, Batch: 100}},
		{name: "another sync setting", give: mk("a", "2m", 16000, 5000, true)},
		{name: "sync not known", give: mk("a", "", 16000, 5000, true)},
		{name: "no raw figure", give: &Result{Settings: Settings{Sync: "always"}, Pipeline: &Pipeline{VisibleRate: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := durable(tt.give)
			switch {
			case tt.want == nil && got != nil:
				t.Fatalf("durable = %+v, want none", got)
			case tt.want != nil && (got == nil || *got != *tt.want):
				t.Fatalf("durable = %+v, want %+v", got, tt.want)
			}
			if tt.line != "" {
				var b bytes.Buffer
				printDurable(&b, got)
				if b.String() != tt.line {
					t.Errorf("line\n%q\nwant\n%q", b.String(), tt.line)
				}
			}
		})
	}

	md := Markdown([]*Result{mk("sync 2m", "2m", 23000, 90000, true), mk("sync always", "always", 16000, 5000, true)})
	want := "| **durable ingest, sync always: POST of 100 → KPI-visible ÷ raw one-fsync-per-message publish** (goal ≥ 15,000 events/s and ≥ 2 ×) | n/a | **3.200** (16,000 ÷ 5,000; met) |"
	if !strings.Contains(md, want) {
		t.Errorf("table lacks %q:\n%s", want, md)
	}
}

func TestValidateSync(t *testing.T) {
	for give, ok := range map[string]bool{"": true, "always": true, "2m": true, "0s": false, "sometimes": false} {
		c := Config{Sync: give}
		err := c.Validate()
		has := err != nil && strings.Contains(err.Error(), `sync "`+give+`": want "always" or a positive duration such as 2m`)
		if has == ok {
			t.Errorf("Validate with sync %q: %v", give, err)
		}
	}
}
