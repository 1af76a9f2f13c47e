package query

import (
	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
)

// ToProto turns totals into the API's KPIs. Every ratio with a zero denominator is 0.
func ToProto(t *bucket.Totals) *ticketpulsev1.Kpis {
	c := &t.C
	return &ticketpulsev1.Kpis{
		FirstResponse:               durationStats(t, bucket.FirstResponse, bucket.FirstCount, bucket.FirstSumMillis),
		NextResponse:                durationStats(t, bucket.NextResponse, bucket.NextCount, bucket.NextSumMillis),
		Resolution:                  durationStats(t, bucket.Resolution, bucket.ResolutionCount, bucket.ResolutionSumMillis),
		Assigned:                    c[bucket.Assigned],
		AssignedNowResolved:         c[bucket.AssignedNowResolved],
		ResolutionRate:              ratio(c[bucket.AssignedNowResolved], c[bucket.Assigned]),
		Resolutions:                 c[bucket.Resolutions],
		Reopens:                     c[bucket.Reopens],
		ReopenRate:                  ratio(c[bucket.Reopens], c[bucket.Solves]),
		Solves:                      c[bucket.Solves],
		OneTouchResolutions:         c[bucket.OneTouch],
		OneTouchRate:                ratio(c[bucket.OneTouch], c[bucket.Resolutions]),
		CsatCount:                   c[bucket.CSATCount],
		CsatPositive:                c[bucket.CSATPositive],
		CsatMean:                    ratio(c[bucket.CSATScoreSum], c[bucket.CSATCount]),
		CsatPercent:                 100 * ratio(c[bucket.CSATPositive], c[bucket.CSATCount]),
		SlaFirstResponseMet:         c[bucket.SLAMet],
		SlaFirstResponseBreached:    c[bucket.SLABreached],
		SlaFirstResponseCompliance:  ratio(c[bucket.SLAMet], c[bucket.SLAMet]+c[bucket.SLABreached]),
		SlaNextResponseMet:          c[bucket.NextSLAMet],
		SlaNextResponseBreached:     c[bucket.NextSLABreached],
		SlaNextResponseCompliance:   ratio(c[bucket.NextSLAMet], c[bucket.NextSLAMet]+c[bucket.NextSLABreached]),
		SlaResolutionMet:            c[bucket.ResolutionSLAMet],
		SlaResolutionBreached:       c[bucket.ResolutionSLABreached],
		SlaResolutionCompliance:     ratio(c[bucket.ResolutionSLAMet], c[bucket.ResolutionSLAMet]+c[bucket.ResolutionSLABreached]),
		FirstResponseBusinessHours:  durationStats(t, bucket.BusinessFirstResponse, bucket.BusinessFirstCount, bucket.BusinessFirstSumMillis),
		ResolutionBusinessHours:     durationStats(t, bucket.BusinessResolution, bucket.BusinessResolutionCount, bucket.BusinessResolutionSumMillis),
		QaScore:                     qaScore(t),
		QaAutoFails:                 c[bucket.QAAutoFails],
		QaAutoFailRate:              ratio(c[bucket.QAAutoFails], c[bucket.QACount]),
		CallsOffered:                c[bucket.CallsOffered],
		CallsAnswered:               c[bucket.CallsAnswered],
		CallsAbandoned:              c[bucket.CallsAbandoned],
		CallsAnsweredInServiceLevel: c[bucket.CallsInServiceLevel],
		CallAbandonRate:             ratio(c[bucket.CallsAbandoned], c[bucket.CallsOffered]),
		CallServiceLevel:            ratio(c[bucket.CallsInServiceLevel], c[bucket.CallsOffered]),
		CallSpeedOfAnswer:           durationStats(t, bucket.CallSpeedOfAnswer, bucket.CallAnswerCount, bucket.CallAnswerSumMillis),
		CallHandleTime:              durationStats(t, bucket.CallHandleTime, bucket.CallHandleCount, bucket.CallHandleSumMillis),
	}
}

// qaScore are the QA scores: the mean exact to the hundredths they are kept in, the percentiles
// read from bins of a tenth of a point.
func qaScore(t *bucket.Totals) *ticketpulsev1.ScoreStats {
	n := t.C[bucket.QACount]
	q := t.H[bucket.QAScore].QuantilesOf(bucket.QAValue, 0.5, 0.9, 0.99)
	return &ticketpulsev1.ScoreStats{Count: n, Mean: fratio(float64(t.C[bucket.QAScoreSum])/100, n), P50: q[0], P90: q[1], P99: q[2]}
}

func durationStats(t *bucket.Totals, d bucket.Duration, count, sumMillis bucket.Counter) *ticketpulsev1.DurationStats {
	n, sum := t.C[count], float64(t.C[sumMillis])/1000
	q := t.H[d].Quantiles(0.5, 0.9, 0.99)
	return &ticketpulsev1.DurationStats{
		Count:       n,
		SumSeconds:  sum,
		MeanSeconds: fratio(sum, n),
		P50Seconds:  q[0],
		P90Seconds:  q[1],
		P99Seconds:  q[2],
	}
}

func ratio(num, den int64) float64 { return fratio(float64(num), den) }

func fratio(num float64, den int64) float64 {
	if den == 0 {
		return 0
	}
	return num / float64(den)
}
