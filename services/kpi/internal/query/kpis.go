package query

import (
	"google.golang.org/protobuf/reflect/protoreflect"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
)

// Fields is a set of top-level Kpis fields, one bit per field number: what a caller asks
// ToProtoFields for. Its zero value is no field; AllFields is every field.
type Fields uint64

// AllFields is every field of Kpis.
var AllFields = func() Fields {
	var f Fields
	fs := (&ticketpulsev1.Kpis{}).ProtoReflect().Descriptor().Fields()
	for i := range fs.Len() {
		f |= 1 << fs.Get(i).Number()
	}
	return f
}()

// FieldNamed returns the set holding the Kpis field of that proto name ("first_response",
// "csat_percent"), or false when Kpis has no such field.
func FieldNamed(name string) (Fields, bool) {
	fd := (&ticketpulsev1.Kpis{}).ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil || fd.Number() >= 64 {
		return 0, false
	}
	return 1 << fd.Number(), true
}

// Has reports whether the field numbered n is in f.
func (f Fields) Has(n protoreflect.FieldNumber) bool { return n < 64 && f&(1<<n) != 0 }

// Field numbers of Kpis, as in kpi.proto (TestToProtoFields checks each against the descriptor).
const (
	fFirstResponse               = 1
	fNextResponse                = 2
	fResolution                  = 3
	fAssigned                    = 4
	fAssignedNowResolved         = 5
	fResolutionRate              = 6
	fResolutions                 = 7
	fReopens                     = 8
	fReopenRate                  = 9
	fOneTouchResolutions         = 10
	fOneTouchRate                = 11
	fCsatCount                   = 12
	fCsatPositive                = 13
	fCsatMean                    = 14
	fCsatPercent                 = 15
	fSlaFirstResponseMet         = 16
	fSlaFirstResponseBreached    = 17
	fSlaFirstResponseCompliance  = 18
	fSlaNextResponseMet          = 19
	fSlaNextResponseBreached     = 20
	fSlaNextResponseCompliance   = 21
	fSlaResolutionMet            = 22
	fSlaResolutionBreached       = 23
	fSlaResolutionCompliance     = 24
	fFirstResponseBusinessHours  = 25
	fResolutionBusinessHours     = 26
	fSolves                      = 27
	fQaScore                     = 28
	fQaAutoFails                 = 29
	fQaAutoFailRate              = 30
	fCallsOffered                = 40
	fCallsAnswered               = 41
	fCallsAbandoned              = 42
	fCallsAnsweredInServiceLevel = 43
	fCallAbandonRate             = 44
	fCallServiceLevel            = 45
	fCallSpeedOfAnswer           = 46
	fCallHandleTime              = 47
)

// histogramOf is the histogram each duration or score field of Kpis is read from.
var histogramOf = map[protoreflect.FieldNumber]bucket.Duration{
	fFirstResponse: bucket.FirstResponse, fNextResponse: bucket.NextResponse, fResolution: bucket.Resolution,
	fFirstResponseBusinessHours: bucket.BusinessFirstResponse, fResolutionBusinessHours: bucket.BusinessResolution,
	fQaScore: bucket.QAScore, fCallSpeedOfAnswer: bucket.CallSpeedOfAnswer, fCallHandleTime: bucket.CallHandleTime,
}

// histograms says which histograms the fields f read: all of them for no fields (a Query
// without Fields).
func (f Fields) histograms() (want [bucket.NumDurations]bool) {
	for n, d := range histogramOf {
		want[d] = f == 0 || f.Has(n)
	}
	return want
}

// ToProto turns totals into the API's KPIs, every field. Every ratio with a zero denominator is 0.
func ToProto(t *bucket.Totals) *ticketpulsev1.Kpis { return ToProtoFields(t, AllFields) }

// ToProtoFields turns totals into the fields f of the API's KPIs, as ToProto has them, and
// leaves the others unset. The quantiles of a duration or score not asked for are not read
// from their histogram: that walk is most of the cost of a point.
func ToProtoFields(t *bucket.Totals, f Fields) *ticketpulsev1.Kpis {
	c := &t.C
	k := &ticketpulsev1.Kpis{}
	if f.Has(fFirstResponse) {
		k.FirstResponse = durationStats(t, bucket.FirstResponse, bucket.FirstCount, bucket.FirstSumMillis)
	}
	if f.Has(fNextResponse) {
		k.NextResponse = durationStats(t, bucket.NextResponse, bucket.NextCount, bucket.NextSumMillis)
	}
	if f.Has(fResolution) {
		k.Resolution = durationStats(t, bucket.Resolution, bucket.ResolutionCount, bucket.ResolutionSumMillis)
	}
	if f.Has(fAssigned) {
		k.Assigned = c[bucket.Assigned]
	}
	if f.Has(fAssignedNowResolved) {
		k.AssignedNowResolved = c[bucket.AssignedNowResolved]
	}
	if f.Has(fResolutionRate) {
		k.ResolutionRate = ratio(c[bucket.AssignedNowResolved], c[bucket.Assigned])
	}
	if f.Has(fResolutions) {
		k.Resolutions = c[bucket.Resolutions]
	}
	if f.Has(fReopens) {
		k.Reopens = c[bucket.Reopens]
	}
	if f.Has(fReopenRate) {
		k.ReopenRate = ratio(c[bucket.Reopens], c[bucket.Solves])
	}
	if f.Has(fSolves) {
		k.Solves = c[bucket.Solves]
	}
	if f.Has(fOneTouchResolutions) {
		k.OneTouchResolutions = c[bucket.OneTouch]
	}
	if f.Has(fOneTouchRate) {
		k.OneTouchRate = ratio(c[bucket.OneTouch], c[bucket.Resolutions])
	}
	if f.Has(fCsatCount) {
		k.CsatCount = c[bucket.CSATCount]
	}
	if f.Has(fCsatPositive) {
		k.CsatPositive = c[bucket.CSATPositive]
	}
	if f.Has(fCsatMean) {
		k.CsatMean = ratio(c[bucket.CSATScoreSum], c[bucket.CSATCount])
	}
	if f.Has(fCsatPercent) {
		k.CsatPercent = 100 * ratio(c[bucket.CSATPositive], c[bucket.CSATCount])
	}
	if f.Has(fSlaFirstResponseMet) {
		k.SlaFirstResponseMet = c[bucket.SLAMet]
	}
	if f.Has(fSlaFirstResponseBreached) {
		k.SlaFirstResponseBreached = c[bucket.SLABreached]
	}
	if f.Has(fSlaFirstResponseCompliance) {
		k.SlaFirstResponseCompliance = ratio(c[bucket.SLAMet], c[bucket.SLAMet]+c[bucket.SLABreached])
	}
	if f.Has(fSlaNextResponseMet) {
		k.SlaNextResponseMet = c[bucket.NextSLAMet]
	}
	if f.Has(fSlaNextResponseBreached) {
		k.SlaNextResponseBreached = c[bucket.NextSLABreached]
	}
	if f.Has(fSlaNextResponseCompliance) {
		k.SlaNextResponseCompliance = ratio(c[bucket.NextSLAMet], c[bucket.NextSLAMet]+c[bucket.NextSLABreached])
	}
	if f.Has(fSlaResolutionMet) {
		k.SlaResolutionMet = c[bucket.ResolutionSLAMet]
	}
	if f.Has(fSlaResolutionBreached) {
		k.SlaResolutionBreached = c[bucket.ResolutionSLABreached]
	}
	if f.Has(fSlaResolutionCompliance) {
		k.SlaResolutionCompliance = ratio(c[bucket.ResolutionSLAMet], c[bucket.ResolutionSLAMet]+c[bucket.ResolutionSLABreached])
	}
	if f.Has(fFirstResponseBusinessHours) {
		k.FirstResponseBusinessHours = durationStats(t, bucket.BusinessFirstResponse, bucket.BusinessFirstCount, bucket.BusinessFirstSumMillis)
	}
	if f.Has(fResolutionBusinessHours) {
		k.ResolutionBusinessHours = durationStats(t, bucket.BusinessResolution, bucket.BusinessResolutionCount, bucket.BusinessResolutionSumMillis)
	}
	if f.Has(fQaScore) {
		k.QaScore = qaScore(t)
	}
	if f.Has(fQaAutoFails) {
		k.QaAutoFails = c[bucket.QAAutoFails]
	}
	if f.Has(fQaAutoFailRate) {
		k.QaAutoFailRate = ratio(c[bucket.QAAutoFails], c[bucket.QACount])
	}
	if f.Has(fCallsOffered) {
		k.CallsOffered = c[bucket.CallsOffered]
	}
	if f.Has(fCallsAnswered) {
		k.CallsAnswered = c[bucket.CallsAnswered]
	}
	if f.Has(fCallsAbandoned) {
		k.CallsAbandoned = c[bucket.CallsAbandoned]
	}
	if f.Has(fCallsAnsweredInServiceLevel) {
		k.CallsAnsweredInServiceLevel = c[bucket.CallsInServiceLevel]
	}
	if f.Has(fCallAbandonRate) {
		k.CallAbandonRate = ratio(c[bucket.CallsAbandoned], c[bucket.CallsOffered])
	}
	if f.Has(fCallServiceLevel) {
		k.CallServiceLevel = ratio(c[bucket.CallsInServiceLevel], c[bucket.CallsOffered])
	}
	if f.Has(fCallSpeedOfAnswer) {
		k.CallSpeedOfAnswer = durationStats(t, bucket.CallSpeedOfAnswer, bucket.CallAnswerCount, bucket.CallAnswerSumMillis)
	}
	if f.Has(fCallHandleTime) {
		k.CallHandleTime = durationStats(t, bucket.CallHandleTime, bucket.CallHandleCount, bucket.CallHandleSumMillis)
	}
	return k
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
