package web

import (
	"math"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// filled is Kpis with every field, and every field of its messages, set to a distinct non-zero
// value: a figure a metric reads without naming it would be cleared by only and change the value.
func filled() *tpv1.Kpis {
	k := &tpv1.Kpis{}
	var fill func(m protoreflect.Message, seed int)
	fill = func(m protoreflect.Message, seed int) {
		fds := m.Descriptor().Fields()
		for i := range fds.Len() {
			fd := fds.Get(i)
			switch fd.Kind() {
			case protoreflect.MessageKind:
				fill(m.Mutable(fd).Message(), seed+100*(i+1))
			case protoreflect.Int64Kind:
				m.Set(fd, protoreflect.ValueOfInt64(int64(seed+i+1)))
			case protoreflect.DoubleKind:
				m.Set(fd, protoreflect.ValueOfFloat64(float64(seed+i)+0.25))
			}
		}
	}
	fill(k.ProtoReflect(), 0)
	return k
}

// only is k with only the top-level fields named, as a ListKpiSeries asking for them answers.
func only(t *testing.T, k *tpv1.Kpis, names []string) *tpv1.Kpis {
	t.Helper()
	out := proto.CloneOf(k)
	m := out.ProtoReflect()
	fds := m.Descriptor().Fields()
	for _, n := range names {
		if fds.ByName(protoreflect.Name(n)) == nil {
			t.Fatalf("%q is not a field of Kpis", n)
		}
	}
	for i := range fds.Len() {
		if fd := fds.Get(i); !slices.Contains(names, string(fd.Name())) {
			m.Clear(fd)
		}
	}
	return out
}

func sameValue(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// Each metric's value from only its Fields is its value from every field, so the sparklines and
// charts that ask ListKpiSeries for those fields alone draw what they drew with all of them.
func TestMetricFields(t *testing.T) {
	full := filled()
	withoutCounts := proto.CloneOf(full) // means and rates whose counts are zero are gaps
	withoutCounts.CsatCount, withoutCounts.Solves = 0, 0
	withoutCounts.FirstResponse.Count, withoutCounts.QaScore.Count, withoutCounts.CallHandleTime.Count = 0, 0, 0
	for _, m := range metrics {
		if len(m.Fields) == 0 {
			t.Errorf("%s names no field", m.Name)
		}
		for _, k := range []*tpv1.Kpis{full, withoutCounts, {}} {
			if got, want := m.Value(only(t, k, m.Fields)), m.Value(k); !sameValue(got, want) {
				t.Errorf("%s from %q alone is %v, from every field %v", m.Name, m.Fields, got, want)
			}
		}
	}
}

// Each family's test reads only its Fields: a Kpis with any one field set is judged the same
// with and without the fields it does not name.
func TestFamilyFields(t *testing.T) {
	full := filled().ProtoReflect()
	fds := full.Descriptor().Fields()
	for _, f := range families {
		hits := 0
		for i := range fds.Len() {
			one := &tpv1.Kpis{}
			one.ProtoReflect().Set(fds.Get(i), full.Get(fds.Get(i)))
			got, want := f.Has(only(t, one, f.Fields)), f.Has(one)
			if got != want {
				t.Errorf("%s with only %s: %v from its fields, %v from every field", f.Name, fds.Get(i).Name(), got, want)
			}
			if want {
				hits++
			}
		}
		if hits != len(f.Fields) {
			t.Errorf("%s: %d fields alone make it present, it names %d (%q)", f.Name, hits, len(f.Fields), f.Fields)
		}
	}
}

// The agent page's one ListKpiSeries names each field once, few enough for kpi (at most 16),
// and every field its QA and call charts are judged by.
func TestChartFields(t *testing.T) {
	fields := chartFields()
	if len(fields) == 0 || len(fields) > 16 {
		t.Fatalf("%d fields %q, want 1 to 16", len(fields), fields)
	}
	for i, f := range fields {
		if slices.Contains(fields[:i], f) {
			t.Errorf("%q twice", f)
		}
	}
	full := filled()
	for _, m := range metrics {
		if !sameValue(m.Value(only(t, full, fields)), m.Value(full)) {
			t.Errorf("%s differs with the chart fields alone", m.Name)
		}
	}
	for _, name := range []string{familyQA, familyCalls} {
		f, _ := familyNamed(name)
		for _, fd := range f.Fields {
			if !slices.Contains(fields, fd) {
				t.Errorf("%s is judged by %s, which the charts do not ask for", name, fd)
			}
		}
	}
}
