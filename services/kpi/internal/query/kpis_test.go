package query

import (
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
)

func totals(counters map[bucket.Counter]int64, samples map[bucket.Duration][]float64) *bucket.Totals {
	t := bucket.NewTotals()
	for c, v := range counters {
		t.C[c] = v
	}
	for d, ss := range samples {
		for _, s := range ss {
			t.H[d].Add(hist.Bin(s), 1)
		}
	}
	return t
}

func TestToProto(t *testing.T) {
	// 100 first responses of 1..100 minutes: p50 = 50 min, p90 = 90 min, p99 = 99 min.
	var minutes []float64
	for i := 1; i <= 100; i++ {
		minutes = append(minutes, float64(60*i))
	}
	tests := []struct {
		name string
		give *bucket.Totals
		want *ticketpulsev1.Kpis
	}{
		{
			name: "zeros divide to zero",
			give: bucket.NewTotals(),
			want: &ticketpulsev1.Kpis{
				FirstResponse: &ticketpulsev1.DurationStats{}, NextResponse: &ticketpulsev1.DurationStats{},
				Resolution: &ticketpulsev1.DurationStats{},
			},
		},
		{
			name: "counters and rates",
			give: totals(map[bucket.Counter]int64{
				bucket.Assigned: 8, bucket.AssignedNowResolved: 6, bucket.Resolutions: 5, bucket.Reopens: 1, bucket.Solves: 5,
				bucket.OneTouch: 2, bucket.CSATCount: 4, bucket.CSATScoreSum: 15, bucket.CSATPositive: 3,
				bucket.SLAMet: 9, bucket.SLABreached: 3,
				bucket.NextCount: 2, bucket.NextSumMillis: 3500,
			}, nil),
			want: &ticketpulsev1.Kpis{
				FirstResponse: &ticketpulsev1.DurationStats{}, Resolution: &ticketpulsev1.DurationStats{},
				NextResponse: &ticketpulsev1.DurationStats{Count: 2, SumSeconds: 3.5, MeanSeconds: 1.75},
				Assigned:     8, AssignedNowResolved: 6, ResolutionRate: 0.75,
				Resolutions: 5, Reopens: 1, Solves: 5, ReopenRate: 0.2, OneTouchResolutions: 2, OneTouchRate: 0.4,
				CsatCount: 4, CsatPositive: 3, CsatMean: 3.75, CsatPercent: 75,
				SlaFirstResponseMet: 9, SlaFirstResponseBreached: 3, SlaFirstResponseCompliance: 0.75,
			},
		},
		{
			name: "only breaches",
			give: totals(map[bucket.Counter]int64{bucket.SLABreached: 4, bucket.Reopens: 2}, nil),
			want: &ticketpulsev1.Kpis{
				FirstResponse: &ticketpulsev1.DurationStats{}, NextResponse: &ticketpulsev1.DurationStats{},
				Resolution:               &ticketpulsev1.DurationStats{},
				Reopens:                  2, // reopens of tickets resolved before the window: no rate
				SlaFirstResponseBreached: 4,
			},
		},
		{
			name: "duration quantiles",
			give: totals(map[bucket.Counter]int64{bucket.FirstCount: 100, bucket.FirstSumMillis: 303_000_000},
				map[bucket.Duration][]float64{bucket.FirstResponse: minutes}),
			want: &ticketpulsev1.Kpis{
				FirstResponse: &ticketpulsev1.DurationStats{Count: 100, SumSeconds: 303000, MeanSeconds: 3030,
					P50Seconds: 3000, P90Seconds: 5400, P99Seconds: 5940},
				NextResponse: &ticketpulsev1.DurationStats{}, Resolution: &ticketpulsev1.DurationStats{},
			},
		},
		{
			name: "next-response and resolution SLA, business hours",
			give: totals(map[bucket.Counter]int64{
				bucket.NextSLAMet: 3, bucket.NextSLABreached: 1, bucket.ResolutionSLAMet: 1, bucket.ResolutionSLABreached: 1,
				bucket.BusinessFirstCount: 2, bucket.BusinessFirstSumMillis: 5000,
				bucket.BusinessResolutionCount: 1, bucket.BusinessResolutionSumMillis: 7_200_000,
			}, nil),
			want: &ticketpulsev1.Kpis{
				FirstResponse: &ticketpulsev1.DurationStats{}, NextResponse: &ticketpulsev1.DurationStats{},
				Resolution:         &ticketpulsev1.DurationStats{},
				SlaNextResponseMet: 3, SlaNextResponseBreached: 1, SlaNextResponseCompliance: 0.75,
				SlaResolutionMet: 1, SlaResolutionBreached: 1, SlaResolutionCompliance: 0.5,
				FirstResponseBusinessHours: &ticketpulsev1.DurationStats{Count: 2, SumSeconds: 5, MeanSeconds: 2.5},
				ResolutionBusinessHours:    &ticketpulsev1.DurationStats{Count: 1, SumSeconds: 7200, MeanSeconds: 7200},
			},
		},
		{
			// Scores of 0.00, 0.05, 0.10, ... 99.95 (2000 reviews): the mean is exact in
			// hundredths, and the nearest-rank p50 (the 1000th, 49.95), p90 (the 1800th, 89.95)
			// and p99 (the 1980th, 98.95) are read to the tenth they are binned by.
			name: "QA scores",
			give: qaTotals(2000, 500),
			want: &ticketpulsev1.Kpis{
				FirstResponse: &ticketpulsev1.DurationStats{}, NextResponse: &ticketpulsev1.DurationStats{},
				Resolution:  &ticketpulsev1.DurationStats{},
				QaScore:     &ticketpulsev1.ScoreStats{Count: 2000, Mean: 49.975, P50: 50, P90: 90, P99: 99},
				QaAutoFails: 500, QaAutoFailRate: 0.25,
			},
		},
		{
			name: "calls",
			give: totals(map[bucket.Counter]int64{
				bucket.CallsOffered: 10, bucket.CallsAnswered: 8, bucket.CallsAbandoned: 2, bucket.CallsInServiceLevel: 6,
				bucket.CallAnswerCount: 8, bucket.CallAnswerSumMillis: 120_000, bucket.CallHandleCount: 8, bucket.CallHandleSumMillis: 2_400_000,
			}, nil),
			want: &ticketpulsev1.Kpis{
				FirstResponse: &ticketpulsev1.DurationStats{}, NextResponse: &ticketpulsev1.DurationStats{},
				Resolution:   &ticketpulsev1.DurationStats{},
				CallsOffered: 10, CallsAnswered: 8, CallsAbandoned: 2, CallsAnsweredInServiceLevel: 6,
				CallAbandonRate: 0.2, CallServiceLevel: 0.6,
				CallSpeedOfAnswer: &ticketpulsev1.DurationStats{Count: 8, SumSeconds: 120, MeanSeconds: 15},
				CallHandleTime:    &ticketpulsev1.DurationStats{Count: 8, SumSeconds: 2400, MeanSeconds: 300},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The business-hours figures are there, empty, wherever a case does not say.
			if tt.want.FirstResponseBusinessHours == nil {
				tt.want.FirstResponseBusinessHours = &ticketpulsev1.DurationStats{}
			}
			if tt.want.ResolutionBusinessHours == nil {
				tt.want.ResolutionBusinessHours = &ticketpulsev1.DurationStats{}
			}
			if tt.want.QaScore == nil {
				tt.want.QaScore = &ticketpulsev1.ScoreStats{}
			}
			// So are the call durations.
			if tt.want.CallSpeedOfAnswer == nil {
				tt.want.CallSpeedOfAnswer = &ticketpulsev1.DurationStats{}
			}
			if tt.want.CallHandleTime == nil {
				tt.want.CallHandleTime = &ticketpulsev1.DurationStats{}
			}
			got := ToProto(tt.give)
			// Quantiles are within the histogram's relative error; compare them apart.
			gq, wq := got.GetFirstResponse(), tt.want.GetFirstResponse()
			for _, p := range []struct {
				name      string
				got, want float64
			}{{"p50", gq.P50Seconds, wq.P50Seconds}, {"p90", gq.P90Seconds, wq.P90Seconds}, {"p99", gq.P99Seconds, wq.P99Seconds}} {
				if math.Abs(p.got-p.want) > hist.RelativeError*p.want {
					t.Errorf("first response %s = %v, want %v within 1%%", p.name, p.got, p.want)
				}
			}
			gq.P50Seconds, gq.P90Seconds, gq.P99Seconds = wq.P50Seconds, wq.P90Seconds, wq.P99Seconds
			if !proto.Equal(got, tt.want) {
				t.Errorf("ToProto =\n %v\nwant\n %v", got, tt.want)
			}
		})
	}
}

// qaTotals holds n QA scores of 0, 0.05, 0.10, ... points (in hundredths: 0, 5, 10, ...), fails
// of them failed automatically.
func qaTotals(n, fails int64) *bucket.Totals {
	t := bucket.NewTotals()
	for i := range n {
		centi := 5 * i
		t.C[bucket.QACount]++
		t.C[bucket.QAScoreSum] += centi
		t.H[bucket.QAScore].Add(bucket.QABin(centi), 1)
	}
	t.C[bucket.QAAutoFails] = fails
	return t
}

// ToProtoFields of one field sets that field as ToProto has it and no other, for every field
// of Kpis (so each field number the selection names is the descriptor's); of every field by
// name it is ToProto; names that are not top-level fields of Kpis are refused.
func TestToProtoFields(t *testing.T) {
	tot := bucket.NewTotals()
	for c := range bucket.NumCounters {
		tot.C[c] = int64(3 + 2*int(c))
	}
	for d := range bucket.NumDurations {
		tot.H[d].Add(hist.Bin(float64(60+d)), 2)
		tot.H[d].Add(hist.Bin(float64(600+d)), 1)
	}
	full := ToProto(tot).ProtoReflect()
	fds := full.Descriptor().Fields()
	var all Fields
	for i := range fds.Len() {
		fd := fds.Get(i)
		f, ok := FieldNamed(string(fd.Name()))
		if !ok {
			t.Fatalf("FieldNamed(%q) refused a field of Kpis", fd.Name())
		}
		all |= f
		if !full.Has(fd) {
			t.Fatalf("the full KPIs have no %s: the totals do not give every field a value", fd.Name())
		}
		got := ToProtoFields(tot, f).ProtoReflect()
		for j := range fds.Len() {
			other := fds.Get(j)
			switch {
			case other == fd && !got.Get(fd).Equal(full.Get(fd)):
				t.Errorf("%s: %v, ToProto has %v", fd.Name(), got.Get(fd), full.Get(fd))
			case other != fd && got.Has(other):
				t.Errorf("%s alone sets %s too", fd.Name(), other.Name())
			}
		}
	}
	if all != AllFields {
		t.Errorf("the fields by name are %b, AllFields %b", all, AllFields)
	}
	if got := ToProtoFields(tot, 0); proto.Size(got) != 0 {
		t.Errorf("no field: %v", got)
	}
	for _, name := range []string{"", "p90_seconds", "first_response.p90_seconds", "firstResponse", "FirstResponse", "kpis", " assigned"} {
		if _, ok := FieldNamed(name); ok {
			t.Errorf("FieldNamed(%q) took it", name)
		}
	}
}
