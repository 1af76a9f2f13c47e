package web

import (
	"html/template"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func TestShownFamilies(t *testing.T) {
	tickets := &tpv1.Kpis{Assigned: 2, FirstResponse: &tpv1.DurationStats{Count: 2}}
	qa := &tpv1.Kpis{QaScore: &tpv1.ScoreStats{Count: 1, Mean: 80}}
	inbound := &tpv1.Kpis{CallsOffered: 3, CallsAbandoned: 3}
	outbound := &tpv1.Kpis{CallHandleTime: &tpv1.DurationStats{Count: 1, MeanSeconds: 300}}
	unrated := &tpv1.Kpis{Reopens: 1} // a reopen alone is a ticket figure
	tests := []struct {
		name   string
		chosen []string
		give   []*tpv1.Kpis
		order  string
		want   []string
	}{
		{name: "tickets only", give: []*tpv1.Kpis{tickets, unrated}, want: []string{"tickets"}},
		{name: "every family", give: []*tpv1.Kpis{tickets, qa, inbound}, want: []string{"calls", "qa", "tickets"}},
		{name: "calls only: no ticket columns", give: []*tpv1.Kpis{inbound}, want: []string{"calls"}},
		{name: "outbound calls count as calls", give: []*tpv1.Kpis{qa, outbound}, want: []string{"calls", "qa"}},
		{name: "no agent: the familiar table", give: nil, want: []string{"tickets"}},
		{name: "agents without figures", give: []*tpv1.Kpis{{}, nil}, want: []string{"tickets"}},
		{name: "ordered by a family without figures", give: []*tpv1.Kpis{tickets}, order: "qa", want: []string{"qa", "tickets"}},
		{name: "chosen, whatever the figures", chosen: []string{"calls"}, give: []*tpv1.Kpis{tickets, qa}, want: []string{"calls"}},
		{name: "chosen, and the order's family", chosen: []string{"tickets"}, give: []*tpv1.Kpis{tickets}, order: "calls", want: []string{"calls", "tickets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"cols": tt.chosen}
			chosen, err := parseFamilies(q["cols"])
			if err != nil {
				t.Fatal(err)
			}
			shown := shownFamilies(chosen, tt.give, tt.order)
			var got []string
			for f, on := range shown {
				if on {
					got = append(got, f)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("shown %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseFamilies(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		want    []string
		wantErr string
	}{
		{name: "none", give: nil, want: nil},
		{name: "two, one twice", give: []string{"qa", "calls", "qa"}, want: []string{"calls", "qa"}},
		{name: "unknown", give: []string{"tickets", "voice"}, wantErr: `cols: "voice" is not a column family`},
		{name: "a comma list is no name", give: []string{"qa,calls"}, wantErr: `cols: "qa,calls"`},
		{name: "markup", give: []string{`<b>"x"</b>`}, wantErr: `cols: "<b>\"x\"</b>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFamilies(tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, tt.want) {
				t.Errorf("chosen %v, want %v", names, tt.want)
			}
		})
	}
}

// Every KPI column of a family sorts by a name kpi orders by, except Resolution p50 (kpi has
// no such order), and every family has columns.
func TestTeamColumns(t *testing.T) {
	perFamily := map[string]int{}
	for _, c := range teamColumns {
		if c.Family == "" {
			continue
		}
		perFamily[c.Family]++
		if _, ok := familyNamed(c.Family); !ok || c.Cell == nil {
			t.Errorf("column %q: family %q known %v, cell %v", c.Label, c.Family, ok, c.Cell != nil)
		}
		if (c.Order == "") != (c.Label == "Resolution p50") {
			t.Errorf("column %q orders by %q", c.Label, c.Order)
		}
		if name, _, fam, ok := parseOrder(c.Order + " desc"); c.Order != "" && (!ok || name != c.Order || fam != c.Family) {
			t.Errorf("order %q desc: %q %q %v", c.Order, name, fam, ok)
		}
	}
	for _, f := range families {
		if perFamily[f.Name] == 0 {
			t.Errorf("family %s has no column", f.Name)
		}
	}
}

func FuzzTeamQuery(f *testing.F) {
	for _, s := range []string{"", "order=qa_score_mean%20desc&cols=qa&cols=calls", "cols=tickets,qa", "order=%20desc", "order=agent_id", "cols=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if name, _, fam, ok := parseOrder(q.Get("order")); ok {
			if !slices.ContainsFunc(teamColumns, func(c column) bool { return c.Order == name && c.Family == fam }) {
				t.Fatalf("order %q accepted as %q of %q", q.Get("order"), name, fam)
			}
		}
		chosen, err := parseFamilies(q["cols"])
		if err != nil {
			return
		}
		for name := range chosen {
			if _, ok := familyNamed(name); !ok {
				t.Fatalf("cols %q accepted %q", q["cols"], name)
			}
		}
	})
}

func TestDefaultSpark(t *testing.T) {
	tests := []struct {
		give map[string]bool
		want string
	}{
		{map[string]bool{"tickets": true, "qa": true, "calls": true}, "first_response_p90"},
		{map[string]bool{"tickets": false, "qa": true, "calls": true}, "qa_score_mean"},
		{map[string]bool{"calls": true}, "call_speed_of_answer_mean"},
		{map[string]bool{}, "first_response_p90"},
	}
	for _, tt := range tests {
		if got := defaultSpark(tt.give).Name; got != tt.want {
			t.Errorf("defaultSpark(%v) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

// Every page's template parses with the functions it calls.
func TestTemplatesParse(t *testing.T) {
	h := &Handler{pages: map[string]*template.Template{}}
	if err := h.parse(); err != nil {
		t.Fatal(err)
	}
}
