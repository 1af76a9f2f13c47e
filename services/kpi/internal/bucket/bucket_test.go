package bucket

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
)

func TestKeysShareOneHashTagPerScope(t *testing.T) {
	s := Scope{Kind: Agent, ID: "ana.{x}@example.com"}
	keys := []string{HourKey("acme", s, 1), DayTotalsKey("acme", s, 1), WeekTotalsKey("acme", s, 1), MarkKey("acme", s, 1)}
	for _, k := range keys {
		open, close := strings.IndexByte(k, '{'), strings.IndexByte(k, '}')
		if tag := k[open : close+1]; tag != s.Tag("acme") {
			t.Errorf("key %q has hash tag %q, want %q", k, tag, s.Tag("acme"))
		}
	}
	if got := (Scope{Kind: Unassigned}).Tag("acme"); got != "{acme:u}" {
		t.Errorf("unassigned tag = %q", got)
	}
}

func TestWeekStartsOnMonday(t *testing.T) {
	for _, give := range []string{"2026-11-23", "2026-11-29", "2026-11-30", "1970-01-01", "1969-12-29"} {
		d, _ := time.Parse("2006-01-02", give)
		day := floorDiv(d.Unix(), 86400)
		first := time.Unix(FirstDayOfWeek(WeekOf(day))*86400, 0).UTC()
		if first.Weekday() != time.Monday || d.Sub(first) < 0 || d.Sub(first) >= 7*24*time.Hour {
			t.Errorf("%s: week starts %s", give, first.Format("2006-01-02 Mon"))
		}
	}
}

func TestFieldsRoundTrip(t *testing.T) {
	tot := NewTotals()
	h := map[string]string{
		"fc": "2", "fs": "3000", BinField(FirstResponse, 5): "2", BinField(Resolution, hist.ZeroBin): "1",
		BinField(NextResponse, -3): "4", "cp": "1",
	}
	if err := tot.AddHash(h); err != nil {
		t.Fatal(err)
	}
	if tot.C[FirstCount] != 2 || tot.C[FirstSumMillis] != 3000 || tot.C[CSATPositive] != 1 {
		t.Fatalf("counters: %v", tot.C)
	}
	if tot.H[FirstResponse][5] != 2 || tot.H[Resolution][hist.ZeroBin] != 1 || tot.H[NextResponse][-3] != 4 {
		t.Fatalf("histograms: %v", tot.H)
	}
	if err := tot.AddHash(map[string]string{"zz": "1"}); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestHourHashFiltersHours(t *testing.T) {
	tot := NewTotals()
	h := map[string]string{HourField(3, "as"): "1", HourField(4, "as"): "10", HourField(23, "as"): "100"}
	if err := tot.AddHourHash(h, 4, 23); err != nil {
		t.Fatal(err)
	}
	if tot.C[Assigned] != 10 {
		t.Fatalf("assigned = %d, want only hour 4", tot.C[Assigned])
	}
}

func TestPackedRoundTrip(t *testing.T) {
	fields := map[string]int64{"fc": 2, "fs": 5400, BinField(FirstResponse, 412): 2, BinField(Resolution, hist.ZeroBin): 1,
		BinField(NextResponse, -3): 4, "cs": -7, "ro": 0}
	packed := Pack(fields)
	// Zero fields left out, the rest sorted byte-wise.
	if want := "v1 F412=2 N-3=4 Rz=1 cs=-7 fc=2 fs=5400"; packed != want {
		t.Fatalf("Pack = %q, want %q", packed, want)
	}
	got := NewTotals()
	if err := got.AddPacked(packed); err != nil {
		t.Fatal(err)
	}
	want := NewTotals()
	for f, v := range fields {
		if err := want.AddField(f, v); err != nil {
			t.Fatal(err)
		}
	}
	if !totalsEqual(got, want) {
		t.Fatalf("round trip of %q: got %+v, want %+v", packed, got, want)
	}
	if empty := Pack(nil); empty != "v1" {
		t.Errorf("empty totals pack to %q, want v1", empty)
	}
}

func TestPackedRejectsMalformed(t *testing.T) {
	for _, give := range []string{"", "v2 fc=1", "v1fc=1", "v1 fc", "v1 =1", "v1 fc=", "v1  fc=1", "v1 fc=1 ", "v1 fc=x", "v1 zz=1"} {
		if err := NewTotals().AddPacked(give); err == nil {
			t.Errorf("AddPacked(%q) accepted", give)
		}
	}
}

func totalsEqual(a, b *Totals) bool {
	if a.C != b.C {
		return false
	}
	for d := range a.H {
		if len(a.H[d]) != len(b.H[d]) {
			return false
		}
		for bin, n := range a.H[d] {
			if b.H[d][bin] != n {
				return false
			}
		}
	}
	return true
}

// Packed hours of either version read the same; an item without an hour is of the hour before it
// only in v2.
func TestEachPackedHours(t *testing.T) {
	want := []string{"7 fc 2", "7 F412 1", "8 as 1"}
	for _, give := range []string{"v2 07|fc=2 F412=1 08|as=1", "v1 07|fc=2 07|F412=1 08|as=1"} {
		var got []string
		if err := EachPackedHours(give, func(hh int, f, v string) error {
			got = append(got, fmt.Sprintf("%d %s %s", hh, f, v))
			return nil
		}); err != nil || !slices.Equal(got, want) {
			t.Errorf("EachPackedHours(%q) = %v (%v), want %v", give, got, err, want)
		}
	}
	for _, give := range []string{"v2 fc=2", "v1 07|fc=2 as=1", "v2 24|fc=1", "v2 xx|fc=1", "v3 07|fc=1", "v2 07|fc=1 "} {
		if err := EachPackedHours(give, func(int, string, string) error { return nil }); err == nil {
			t.Errorf("EachPackedHours(%q) accepted", give)
		}
	}
}

// Duration indexes are stored in applied contributions and prefixes in bucket hashes, so the
// families added later keep theirs: QA scores 5, then the call durations. Every counter field
// and every prefix names one thing only.
func TestStoredNumbering(t *testing.T) {
	for _, tt := range []struct {
		d      Duration
		index  int
		prefix string
	}{{QAScore, 5, "Q"}, {CallSpeedOfAnswer, 6, "A"}, {CallHandleTime, 7, "H"}} {
		if int(tt.d) != tt.index || BinField(tt.d, 1) != tt.prefix+"1" {
			t.Errorf("duration %d (%s): want index %d and prefix %s", tt.d, BinField(tt.d, 1), tt.index, tt.prefix)
		}
	}
	if NumDurations != 8 {
		t.Errorf("NumDurations = %d, want 8", NumDurations)
	}
	seen := map[string]bool{}
	for c := range NumCounters {
		f := c.Field()
		if f == "" || seen[f] {
			t.Errorf("counter %d: field %q empty or used twice", c, f)
		}
		seen[f] = true
	}
	for d := range NumDurations {
		p := BinField(d, 1)
		if seen[p] {
			t.Errorf("duration %d: prefix of %q used twice", d, p)
		}
		seen[p] = true
	}
}
