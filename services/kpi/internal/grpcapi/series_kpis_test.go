package grpcapi

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// kpiFields are the top-level fields of Kpis, kpiNames their proto names.
var (
	kpiFields = (&ticketpulsev1.Kpis{}).ProtoReflect().Descriptor().Fields()
	kpiNames  = func() []string {
		names := make([]string, kpiFields.Len())
		for i := range names {
			names[i] = string(kpiFields.Get(i).Name())
		}
		return names
	}()
)

// everyFigure writes, for each agent at random hours between from and to, every counter and a
// sample of every histogram (durations, QA scores), so every field of Kpis has a value: the
// ticket, QA and call figures alike.
func everyFigure(t testing.TB, rdb redis.UniversalClient, agents []string, from, to time.Time) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	b := querytest.NewBuilder(tenant)
	for h := window.HourOf(from); h < window.HourOf(to); h++ {
		for _, id := range agents {
			if rng.IntN(3) != 0 {
				continue
			}
			s := bucket.Scope{Kind: bucket.Agent, ID: id}
			for c := range bucket.NumCounters {
				b.Add(s, h, c.Field(), int64(1+rng.IntN(4)))
			}
			for d := range bucket.NumDurations {
				bin := hist.Bin(float64(5 + rng.IntN(20_000)))
				if d == bucket.QAScore {
					bin = bucket.QABin(int64(rng.IntN(10_001)))
				}
				b.Add(s, h, bucket.BinField(d, bin), 1)
			}
			b.Index(id, "", h)
		}
	}
	if _, err := b.Flush(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
}

// A series of some kpis equals the series of every kpi on those fields and leaves the others
// unset, for each kind of field (durations, rates, counters, QA, calls), by hour, by Berlin
// day (a day's totals less an hour, plus an hour of the day before) and by week; without kpis
// every field is there.
func TestListKpiSeriesKpis(t *testing.T) {
	rdb := testenv.Redis(t)
	agents := []string{ana, "bo", "<script>alert(1)</script>"}
	everyFigure(t, rdb, agents, mustTime("2026-11-02T00:00:00Z"), mustTime("2026-11-24T15:00:00Z"))
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()
	windows := []struct {
		name   string
		window *ticketpulsev1.Window
		gran   ticketpulsev1.Granularity
	}{
		{"hourly", rolling("24h", ""), ticketpulsev1.Granularity_GRANULARITY_HOUR},
		{"daily in Berlin", rolling("7d", "Europe/Berlin"), ticketpulsev1.Granularity_GRANULARITY_DAY},
		{"weekly", zoned("2026-11-02T00:00:00Z", "2026-11-23T00:00:00Z", ""), ticketpulsev1.Granularity_GRANULARITY_WEEK},
	}
	tests := []struct {
		name string
		kpis []string
	}{
		{"a duration", []string{"first_response"}},
		{"a business-hours duration", []string{"resolution_business_hours"}},
		{"a rate", []string{"resolution_rate"}},
		{"a counter", []string{"assigned"}},
		{"a mean and its count", []string{"csat_mean", "csat_count"}},
		{"the QA score", []string{"qa_score"}},
		{"a QA rate", []string{"qa_auto_fail_rate"}},
		{"a call duration", []string{"call_speed_of_answer"}},
		{"call counters and rates", []string{"calls_offered", "call_service_level", "call_abandon_rate"}},
		{"one of each, in any order", []string{"call_handle_time", "reopen_rate", "solves", "qa_score", "sla_resolution_compliance", "next_response"}},
		{"sixteen", kpiNames[len(kpiNames)-MaxSeriesKpis:]},
	}
	for _, w := range windows {
		full, err := c.ListKpiSeries(ctx, &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT,
			Ids: agents, Window: w.window, Granularity: w.gran, PageSize: int32(len(agents))})
		if err != nil {
			t.Fatal(err)
		}
		// Without kpis, every field has a value in some point: the selection has something to
		// leave out, and each field it keeps is compared with a figure, not a zero.
		for i := range kpiFields.Len() {
			fd := kpiFields.Get(i)
			if !slices.ContainsFunc(full.GetSeries(), func(s *ticketpulsev1.KpiSeries) bool {
				return slices.ContainsFunc(s.GetPoints(), func(p *ticketpulsev1.KpiPoint) bool { return p.GetKpis().ProtoReflect().Has(fd) })
			}) {
				t.Fatalf("%s: no point of the full series has %s", w.name, fd.Name())
			}
		}
		for _, tt := range tests {
			t.Run(w.name+"/"+tt.name, func(t *testing.T) {
				got, err := c.ListKpiSeries(ctx, &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT,
					Ids: agents, Window: w.window, Granularity: w.gran, PageSize: int32(len(agents)), Kpis: tt.kpis})
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(got.GetWindow(), full.GetWindow()) || len(got.GetSeries()) != len(full.GetSeries()) {
					t.Fatalf("window %v with %d series, full %v with %d", got.GetWindow(), len(got.GetSeries()), full.GetWindow(), len(full.GetSeries()))
				}
				// A few fields of about 40 are a small part of the answer.
				if size, limit := proto.Size(got), proto.Size(full)/max(1, 4-len(tt.kpis)); size >= limit {
					t.Errorf("%d bytes, at least %d of the full series' %d: the fields left out still cost", size, limit, proto.Size(full))
				}
				for i, s := range got.GetSeries() {
					fs := full.GetSeries()[i]
					if s.GetScopeId() != fs.GetScopeId() || len(s.GetPoints()) != len(fs.GetPoints()) {
						t.Fatalf("series %d: %q of %d points, full %q of %d", i, s.GetScopeId(), len(s.GetPoints()), fs.GetScopeId(), len(fs.GetPoints()))
					}
					for j, p := range s.GetPoints() {
						fp := fs.GetPoints()[j]
						if !proto.Equal(p.GetFrom(), fp.GetFrom()) || !proto.Equal(p.GetTo(), fp.GetTo()) {
							t.Fatalf("%q point %d spans [%v, %v), full [%v, %v)", s.GetScopeId(), j, p.GetFrom(), p.GetTo(), fp.GetFrom(), fp.GetTo())
						}
						if diff := selectedDiff(p.GetKpis(), fp.GetKpis(), tt.kpis); diff != "" {
							t.Fatalf("%q point %d: %s", s.GetScopeId(), j, diff)
						}
					}
				}
			})
		}
	}
}

// selectedDiff says how got differs from full on the fields named (it must equal it) and on
// the others (it must leave them unset); "" when it does not.
func selectedDiff(got, full *ticketpulsev1.Kpis, names []string) string {
	g, f := got.ProtoReflect(), full.ProtoReflect()
	for i := range kpiFields.Len() {
		fd := kpiFields.Get(i)
		if !slices.Contains(names, string(fd.Name())) {
			if g.Has(fd) {
				return string(fd.Name()) + " was not asked for but is set to " + valueText(g.Get(fd))
			}
			continue
		}
		if g.Has(fd) != f.Has(fd) || !g.Get(fd).Equal(f.Get(fd)) {
			return string(fd.Name()) + " is " + valueText(g.Get(fd)) + ", the full series has " + valueText(f.Get(fd))
		}
	}
	return ""
}

func valueText(v protoreflect.Value) string {
	if m, ok := v.Interface().(protoreflect.Message); ok {
		return "{" + prototext.MarshalOptions{}.Format(m.Interface()) + "}"
	}
	return v.String()
}

// A page token is for the kpis of the request it was issued for.
func TestListKpiSeriesKpisPageToken(t *testing.T) {
	rdb := testenv.Redis(t)
	agents := []string{ana, "bo", "cy"}
	everyFigure(t, rdb, agents, mustTime("2026-11-20T00:00:00Z"), mustTime("2026-11-24T00:00:00Z"))
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()
	req := &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT,
		Window: rolling("7d", ""), Granularity: ticketpulsev1.Granularity_GRANULARITY_DAY, PageSize: 2, Kpis: []string{"assigned"}}
	first, err := c.ListKpiSeries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetNextPageToken() == "" {
		t.Fatal("one page: the test needs two")
	}
	other := proto.CloneOf(req)
	other.Kpis, other.PageToken = []string{"resolutions"}, first.GetNextPageToken()
	_, err = c.ListKpiSeries(ctx, other)
	if fields := badRequest(t, err); !slices.Equal(fields, []string{"page_token"}) {
		t.Errorf("token of an assigned series used for resolutions: fields %q", fields)
	}
	rest := proto.CloneOf(req)
	rest.PageToken = first.GetNextPageToken()
	second, err := c.ListKpiSeries(ctx, rest)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.GetSeries()) != 1 || second.GetSeries()[0].GetScopeId() != "cy" {
		t.Fatalf("second page %v, want cy's series", second.GetSeries())
	}
	for _, p := range second.GetSeries()[0].GetPoints() {
		if diff := selectedDiff(p.GetKpis(), p.GetKpis(), req.Kpis); diff != "" {
			t.Fatalf("second page: %s", diff)
		}
	}
}

// kpiFields never panics; it takes a list only when every name is a distinct field of Kpis and
// there are at most MaxSeriesKpis, and then selects exactly those; otherwise each violation is
// of kpis or of one kpis[i], with a reason that stays short however long the name.
func FuzzKpiFields(f *testing.F) {
	for _, seed := range []string{"", "first_response", "first_response,csat_percent", "csat", "assigned,assigned",
		"firstResponse", "first_response.p90_seconds", strings.Repeat("x,", 20), strings.Join(kpiNames, ","), "\xff\xfe", "é,,"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, list string) {
		var names []string
		if list != "" {
			names = strings.Split(list, ",")
		}
		var v violations
		got := v.kpiFields(names)
		if len(v.Violations) == 0 {
			want := query.AllFields
			if len(names) > 0 {
				want = 0
			}
			seen := map[string]bool{}
			for _, n := range names {
				fd, ok := query.FieldNamed(n)
				if !ok || seen[n] {
					t.Fatalf("%q taken: %q is not a distinct field", names, n)
				}
				seen[n] = true
				want |= fd
			}
			if len(names) > MaxSeriesKpis || got != want {
				t.Fatalf("%q gave %b, want %b", names, got, want)
			}
			return
		}
		for _, fv := range v.Violations {
			if fv.GetField() != "kpis" && !strings.HasPrefix(fv.GetField(), "kpis[") {
				t.Errorf("violation of %q", fv.GetField())
			}
			if len(fv.GetDescription()) > 400 { // 64 bytes of a name, each at most 4 quoted
				t.Errorf("%s: a %d-byte reason", fv.GetField(), len(fv.GetDescription()))
			}
		}
	})
}
