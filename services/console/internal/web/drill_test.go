package web

import (
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/chart"
	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
)

func FuzzParseTicketFilter(f *testing.F) {
	for _, s := range []string{"", "max_rating=2", "min_first_response=90.5&min_reopens=1&sla_breached=1&unresolved=1",
		"max_rating=0", "min_first_response=NaN", "min_first_response=1e308", "min_reopens=-1", "max_rating=%3Cscript%3E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		pf, _, err := parseTicketFilter(q)
		if err != nil {
			if !strings.Contains(err.Error(), ": ") {
				t.Fatalf("error %q names no field", err)
			}
			return
		}
		if r := pf.MaxRating; r != nil && (*r < 1 || *r > 5) {
			t.Fatalf("accepted rating %d", *r)
		}
		if m := pf.MinFirstResponseSeconds; m != nil && (math.IsNaN(*m) || math.IsInf(*m, 0) || *m < 0) {
			t.Fatalf("accepted first response %v", *m)
		}
		if n := pf.MinReopens; n != nil && *n < 0 {
			t.Fatalf("accepted reopens %d", *n)
		}
	})
}

func TestSparkGranularity(t *testing.T) {
	day := func(from, to string) *tpv1.Window {
		a, _ := time.Parse(time.DateOnly, from)
		b, _ := time.Parse(time.DateOnly, to)
		w, _, err := parseWindow(url.Values{"window": {"range"}, "from": {a.Format(time.DateOnly)}, "to": {b.Format(time.DateOnly)}})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for _, c := range []struct {
		sel  windowSel
		win  *tpv1.Window
		want tpv1.Granularity
	}{
		{windowSel{Rolling: "24h"}, nil, tpv1.Granularity_GRANULARITY_HOUR},
		{windowSel{Rolling: "30d"}, nil, tpv1.Granularity_GRANULARITY_DAY},
		{windowSel{Rolling: "range"}, day("2026-01-01", "2026-03-03"), tpv1.Granularity_GRANULARITY_DAY},
		{windowSel{Rolling: "range"}, day("2026-01-01", "2026-06-30"), tpv1.Granularity_GRANULARITY_WEEK},
		{windowSel{Rolling: "range"}, day("2020-01-01", "2026-12-31"), tpv1.Granularity_GRANULARITY_MONTH},
	} {
		if got := sparkGranularity(c.sel, c.win); got != c.want {
			t.Errorf("%v %v: %v, want %v", c.sel, c.win, got, c.want)
		}
	}
}

// A mean of no samples is a gap in the text alternative and the chart, a count of none is zero.
func TestMetricGaps(t *testing.T) {
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ps := []chart.Point{{At: at, Value: 1}, {At: at.Add(time.Hour), Value: chart.Gap}}
	m, _ := metricNamed("csat_mean")
	if got := describe(m, ps); got != "CSAT mean by period: 1.00, no data" {
		t.Errorf("describe: %q", got)
	}
	if v := m.Value(&tpv1.Kpis{}); !math.IsNaN(v) {
		t.Errorf("CSAT mean of no ratings: %v, want a gap", v)
	}
	r, _ := metricNamed("resolutions")
	if v := r.Value(&tpv1.Kpis{}); v != 0 {
		t.Errorf("resolutions of an empty period: %v, want 0", v)
	}
	if got := minutesAtLeast(&tpv1.DurationStats{Count: 3, P90Seconds: 605}); got != "10.08" {
		t.Errorf("minutesAtLeast: %q", got)
	}
}

// One simulation per session: a second what-if while the first runs is refused, before any call
// (the handler here has no escalation client to call).
func TestOneSimulationPerSession(t *testing.T) {
	codec, err := session.NewCodec(make([]byte, 32), false, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Codec: codec, CallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.New("acme", "api-key", "all", []string{"escalations:read"}, "tp_x", time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := codec.Write(rec, s); err != nil {
		t.Fatal(err)
	}
	if !h.acquireSimulation(s.ID) {
		t.Fatal("a fresh session's slot is taken")
	}
	form := url.Values{"csrf": {s.CSRF}, "rules_yaml": {"tenants: {}"}, "range": {"24h"}}
	req := httptest.NewRequest(http.MethodPost, "/t/acme/rules/simulate", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	got := httptest.NewRecorder()
	h.ServeHTTP(got, req)
	if got.Code != http.StatusTooManyRequests || !strings.Contains(got.Body.String(), "still running") {
		t.Errorf("second simulation: %d, want 429\n%s", got.Code, got.Body)
	}
	h.releaseSimulation(s.ID)
	if !h.acquireSimulation(s.ID) {
		t.Error("the slot stays taken after the simulation ended")
	}
}
