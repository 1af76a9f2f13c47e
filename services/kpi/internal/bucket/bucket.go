// Package bucket defines how KPI figures are laid out in Redis: which keys hold which scope's
// hourly, daily and weekly totals, the field names, and how a key read back becomes Totals.
//
// Every key of one scope shares the hash tag {<tenant>:<kind>:<id>}, so a script that updates a
// scope touches one Redis Cluster slot. Per scope there are:
//
//	tp:{T:a:X}:h:<day>    hash, the hourly detail of one UTC day, fields "<hh>|<field>", or
//	                      packed into one field (PackedHoursField) once the day has ended
//	tp:{T:a:X}:dt:<day>   string, the day's totals, packed (see Pack)
//	tp:{T:a:X}:wt:<week>  string, the week's totals, packed (weeks start on Monday, UTC)
//	tp:{T:a:X}:mt:<month> string, the calendar month's (UTC) totals, packed
//	tp:{T:a:X}:yt:<year>  string, the calendar year's (UTC) totals, packed
//	tp:{T:a:X}:gen        string, the generation of the scope's totals (see GenKey)
//
// <day> is days since 1970-01-01 UTC, <week> is WeekOf(day), <month> is MonthOf(day) (months
// since January 1970) and <year> is YearOf(day) (years since 1970). The hourly detail is the only
// thing the write path adds to; the day and week totals are derived from it by the rollup once the
// day or week has ended, and deleted by the write path (atomically, in the scope's slot) when a
// late event changes an hour they cover. So a totals key, when it exists, always equals the sum
// of its hours, and a reader that finds none reads the hours instead.
//
// A window is answered from the coarsest keys that cover it exactly: whole years, then whole
// months, weeks and days, then single hours; most of a day (more than twelve hours) as the day's
// totals less its other hours, since every figure is a sum (package query).
package bucket

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// Kind is the kind of scope figures are credited to.
type Kind byte

const (
	Agent      Kind = 'a'
	Team       Kind = 'g'
	Unassigned Kind = 'u'
	// Queue is a contact-centre queue: only call figures are credited to it (a ticket has no queue).
	Queue Kind = 'q'
	// Tenant is the whole tenant: only the drill-down index (TicketIndexKey) has this scope; no
	// bucket does.
	Tenant Kind = 'k'
)

// Scope names whose figures a bucket holds. ID is the helpdesk's own id, unescaped; empty for Unassigned.
type Scope struct {
	Kind Kind
	ID   string
}

// Tag is the scope's hash tag, the part of every key that picks its Redis Cluster slot.
func (s Scope) Tag(tenant string) string {
	switch s.Kind {
	case Unassigned:
		return "{" + tenant + ":u}"
	case Tenant:
		return "{" + tenant + ":k}"
	}
	return "{" + tenant + ":" + string(s.Kind) + ":" + idtoken.Escape(s.ID) + "}"
}

// HourKey holds the hourly detail of one UTC day.
func HourKey(tenant string, s Scope, day int64) string {
	return "tp:" + s.Tag(tenant) + ":h:" + strconv.FormatInt(day, 10)
}

// DayTotalsKey holds the packed totals of one UTC day once the rollup has packed it.
func DayTotalsKey(tenant string, s Scope, day int64) string {
	return "tp:" + s.Tag(tenant) + ":dt:" + strconv.FormatInt(day, 10)
}

// WeekTotalsKey holds the packed totals of one week once the rollup has sealed it.
func WeekTotalsKey(tenant string, s Scope, week int64) string {
	return "tp:" + s.Tag(tenant) + ":wt:" + strconv.FormatInt(week, 10)
}

// MonthTotalsKey holds the packed totals of one calendar month (UTC) once the rollup has derived it.
func MonthTotalsKey(tenant string, s Scope, month int64) string {
	return "tp:" + s.Tag(tenant) + ":mt:" + strconv.FormatInt(month, 10)
}

// YearTotalsKey holds the packed totals of one calendar year (UTC) once the rollup has derived it.
func YearTotalsKey(tenant string, s Scope, year int64) string {
	return "tp:" + s.Tag(tenant) + ":yt:" + strconv.FormatInt(year, 10)
}

// FirstKey holds the first UTC day (unix day) on which the scope ever got figures: the write
// path lowers it in the same atomic step as it adds figures to an hour of the scope, so no hour
// before it has any. The rollup writes no empty totals for periods that end on or before it, and
// readers answer a missing totals key of such a period as empty without reading below it. A
// scope without one (none of its figures was written since the mark exists) is read as before.
func FirstKey(tenant string, s Scope) string { return "tp:" + s.Tag(tenant) + ":ff" }

// GenKey holds the scope's totals generation: an opaque token that readers create when it is
// missing and that is deleted in the same atomic step as any totals key of the scope is deleted
// (the write path, on a late event) or written with an expiry (the rollup under a retention: an
// expired key may come back with other content). Totals are only ever written where none exist,
// so while the generation keeps one value every totals key of the scope that exists keeps its
// content, and a reader may keep totals it decoded under that value (see package query).
func GenKey(tenant string, s Scope) string { return "tp:" + s.Tag(tenant) + ":gen" }

// TicketIndexKey is the drill-down index of one scope for one UTC day: a hash of
// "<hh>|<escaped ticket id>" to the number of the ticket's figures credited to the scope in that
// hour (package ticketindex). It is written by the same script, under the same version marks, as
// the scope's hourly detail, and expires with it.
func TicketIndexKey(tenant string, s Scope, day int64) string {
	return "tp:" + s.Tag(tenant) + ":k:" + strconv.FormatInt(day, 10)
}

// MarkKey holds, per ticket, the highest version of its deltas applied to the scope, for the
// tickets applied on one UTC day of the writer's clock (see package store).
func MarkKey(tenant string, s Scope, day int64) string {
	return "tp:" + s.Tag(tenant) + ":m:" + strconv.FormatInt(day, 10)
}

// IndexTag is the hash tag of a tenant's listing index.
func IndexTag(tenant string) string { return "{" + tenant + ":ix}" }

// IndexGenKey holds the generation of a tenant's per-day listing sets (AgentsKey, TeamAgentsKey,
// TeamsKey, QueuesKey): readers create it when it is missing, and the write path deletes it in the same
// atomic step as it adds a member that a set did not have. While it keeps one value, those sets
// only lose whole keys (when they expire), so a reader may keep a union of them (see package query).
func IndexGenKey(tenant string) string { return "tp:" + IndexTag(tenant) + ":gen" }

// AgentsKey is the set of escaped agent ids credited with anything on a UTC day.
func AgentsKey(tenant string, day int64) string {
	return "tp:" + IndexTag(tenant) + ":a:" + strconv.FormatInt(day, 10)
}

// TeamAgentsKey is the set of escaped agent ids credited with samples of a team on a UTC day.
func TeamAgentsKey(tenant, team string, day int64) string {
	return "tp:" + IndexTag(tenant) + ":ga:" + idtoken.Escape(team) + ":" + strconv.FormatInt(day, 10)
}

// ToSealKey is the set of weeks of a tenant that got figures and wait for the rollup to seal them
// once they have ended; ToPackKey is the same for days.
func ToSealKey(tenant string) string { return "tp:" + IndexTag(tenant) + ":toseal" }

// ToPackKey: see ToSealKey.
func ToPackKey(tenant string) string { return "tp:" + IndexTag(tenant) + ":topack" }

// ToMonthKey and ToYearKey are the same for months and years.
func ToMonthKey(tenant string) string { return "tp:" + IndexTag(tenant) + ":tomonth" }

// ToYearKey: see ToMonthKey.
func ToYearKey(tenant string) string { return "tp:" + IndexTag(tenant) + ":toyear" }

// AllAgentsKey and AllTeamsKey are the sets of every escaped agent and team id of a tenant ever
// credited with anything: the rollup seals their weeks even when they were idle, so a 30-day read
// of an idle week finds a sealed (empty) week instead of falling back to its days.
func AllAgentsKey(tenant string) string { return "tp:" + IndexTag(tenant) + ":allagents" }

// AllTeamsKey: see AllAgentsKey.
func AllTeamsKey(tenant string) string { return "tp:" + IndexTag(tenant) + ":allteams" }

// AllQueuesKey: see AllAgentsKey.
func AllQueuesKey(tenant string) string { return "tp:" + IndexTag(tenant) + ":allqueues" }

// TenantsKey is the set of keyspaces with any figures, for the rollup: tenants, and the key
// generations a rebuild writes (package generation), which leave it when they are retired.
const TenantsKey = "tp:{tenants}"

// TeamsKey is the set of escaped team ids credited with anything on a UTC day.
func TeamsKey(tenant string, day int64) string {
	return "tp:" + IndexTag(tenant) + ":g:" + strconv.FormatInt(day, 10)
}

// QueuesKey is the set of escaped queue ids credited with call figures on a UTC day.
func QueuesKey(tenant string, day int64) string {
	return "tp:" + IndexTag(tenant) + ":q:" + strconv.FormatInt(day, 10)
}

// DayOf returns the UTC day of a unix hour (hours since the epoch).
func DayOf(hour int64) int64 { return floorDiv(hour, 24) }

// WeekOf returns the Monday-based week of a UTC day (1970-01-01 was a Thursday).
func WeekOf(day int64) int64 { return floorDiv(day+3, 7) }

// FirstDayOfWeek is the first day (a Monday) of week.
func FirstDayOfWeek(week int64) int64 { return week*7 - 3 }

// MonthOf returns the calendar month (UTC) of a day, as months since January 1970.
func MonthOf(day int64) int64 {
	t := time.Unix(day*86400, 0).UTC()
	return int64(t.Year()-1970)*12 + int64(t.Month()-1)
}

// FirstDayOfMonth is the first day of month.
func FirstDayOfMonth(month int64) int64 {
	y, m := floorDiv(month, 12), month-12*floorDiv(month, 12)
	return floorDiv(time.Date(1970+int(y), time.Month(m+1), 1, 0, 0, 0, 0, time.UTC).Unix(), 86400)
}

// YearOf returns the calendar year (UTC) of a day, as years since 1970.
func YearOf(day int64) int64 { return int64(time.Unix(day*86400, 0).UTC().Year() - 1970) }

// FirstDayOfYear is the first day (January 1) of year.
func FirstDayOfYear(year int64) int64 { return FirstDayOfMonth(12 * year) }

// FirstMonthOfYear is the first month (January) of year.
func FirstMonthOfYear(year int64) int64 { return 12 * year }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Counter is one additive figure of a bucket.
type Counter int

const (
	FirstCount Counter = iota
	FirstSumMillis
	NextCount
	NextSumMillis
	ResolutionCount
	ResolutionSumMillis
	Assigned
	AssignedNowResolved
	Resolutions
	Reopens
	OneTouch
	CSATCount
	CSATScoreSum
	CSATPositive
	SLAMet
	SLABreached
	// The next-response and resolution SLA, judged by the rules file's SLA policies.
	NextSLAMet
	NextSLABreached
	ResolutionSLAMet
	ResolutionSLABreached
	// First response and resolution time in business hours (the calendar of the ticket's SLA
	// policy), next to the calendar-time figures above.
	BusinessFirstCount
	BusinessFirstSumMillis
	BusinessResolutionCount
	BusinessResolutionSumMillis
	// Solves counts every resolution, also one a reopen undid later (Resolutions counts a
	// ticket's latest only): reopen_rate's denominator.
	Solves
	// QA reviews (qa_scored events): how many, the sum of their scores in hundredths of a
	// point, and how many failed automatically.
	QACount
	QAScoreSum
	QAAutoFails
	// Contact-centre calls: inbound calls offered, answered, abandoned and answered within the
	// tenant's service-level threshold (each call once, in the hour it was offered), and the
	// count and sum of the speed-of-answer and handle-time samples.
	CallsOffered
	CallsAnswered
	CallsAbandoned
	CallsInServiceLevel
	CallAnswerCount
	CallAnswerSumMillis
	CallHandleCount
	CallHandleSumMillis
	NumCounters
)

var counterFields = [NumCounters]string{
	FirstCount: "fc", FirstSumMillis: "fs", NextCount: "nc", NextSumMillis: "ns",
	ResolutionCount: "rc", ResolutionSumMillis: "rs", Assigned: "as", AssignedNowResolved: "ar",
	Resolutions: "rv", Reopens: "ro", OneTouch: "ot", CSATCount: "cc", CSATScoreSum: "cs",
	CSATPositive: "cp", SLAMet: "sm", SLABreached: "sb",
	NextSLAMet: "nm", NextSLABreached: "nb", ResolutionSLAMet: "rm", ResolutionSLABreached: "rb",
	BusinessFirstCount: "bc", BusinessFirstSumMillis: "bs", BusinessResolutionCount: "wc", BusinessResolutionSumMillis: "ws",
	Solves: "sv", QACount: "qc", QAScoreSum: "qs", QAAutoFails: "qf",
	CallsOffered: "xo", CallsAnswered: "xa", CallsAbandoned: "xb", CallsInServiceLevel: "xl",
	CallAnswerCount: "yc", CallAnswerSumMillis: "ys", CallHandleCount: "hc", CallHandleSumMillis: "hs",
}

// Field is the hash field name of c.
func (c Counter) Field() string { return counterFields[c] }

// Duration is a KPI kept as a histogram.
type Duration int

const (
	FirstResponse Duration = iota
	NextResponse
	Resolution
	// BusinessFirstResponse and BusinessResolution are first response and resolution time in
	// business hours.
	BusinessFirstResponse
	BusinessResolution
	// QAScore is not a duration: its histogram holds QA scores in linear bins of a tenth of a
	// point (QABin, QAValue), next to the durations so it is merged and rolled up like them.
	QAScore
	// CallSpeedOfAnswer is an inbound call's offer to answer, CallHandleTime an answered call's
	// talk + hold + wrap-up.
	CallSpeedOfAnswer
	CallHandleTime
	NumDurations
)

// QABin is the bin of a QA score given in hundredths of a point (0 to 10000): bin k holds the
// scores within 0.05 of k/10 (k-0.5 to k+0.5 tenths, the upper edge in the next bin), so 0 to
// 100 takes the 1001 bins 0 to 1000.
func QABin(centi int64) int32 { return int32((max(centi, 0) + 5) / 10) }

// QAValue is the score a QA bin stands for: within 0.05 of every score in it.
func QAValue(bin int32) float64 { return float64(bin) / 10 }

var durationPrefix = [NumDurations]byte{FirstResponse: 'F', NextResponse: 'N', Resolution: 'R', BusinessFirstResponse: 'B', BusinessResolution: 'W',
	QAScore: 'Q', CallSpeedOfAnswer: 'A', CallHandleTime: 'H'}

// BinField is the hash field of bin b of duration d, e.g. "F412"; the zero bin is "Fz".
func BinField(d Duration, b int32) string {
	if b == hist.ZeroBin {
		return string(durationPrefix[d]) + "z"
	}
	return string(durationPrefix[d]) + strconv.FormatInt(int64(b), 10)
}

// HourField prefixes field with the hour of the day, for the hourly detail hash.
func HourField(hourOfDay int, field string) string {
	return string([]byte{byte('0' + hourOfDay/10), byte('0' + hourOfDay%10), '|'}) + field
}

// PackedHoursField is the one field of an hour hash that the rollup packed once its day ended:
// every "<hh>|<field>" of the day with its value, in the packed form of Pack with each hour named
// once ("v2 07|fc=2 F412=1 08|as=1 ...", see EachPackedHours; "v1" named it in every item). A hash of hundreds of fields is far larger in Redis than one string holding
// them; the write path unpacks it again before a late event changes an hour.
const PackedHoursField = "d"

// SplitHourField returns the hour of the day and the plain field of an hourly detail field.
func SplitHourField(f string) (hourOfDay int, field string, err error) {
	if len(f) < 4 || f[2] != '|' {
		return 0, "", fmt.Errorf("hourly field %q: want hh|field", f)
	}
	h, err := strconv.Atoi(f[:2])
	if err != nil || h < 0 || h > 23 {
		return 0, "", fmt.Errorf("hourly field %q: bad hour", f)
	}
	return h, f[3:], nil
}

// Totals are figures summed over any set of buckets.
type Totals struct {
	C [NumCounters]int64
	H [NumDurations]hist.Hist
}

// NewTotals returns empty totals.
func NewTotals() *Totals {
	t := &Totals{}
	for i := range t.H {
		t.H[i] = hist.Hist{}
	}
	return t
}

var counterByField = func() map[string]Counter {
	m := make(map[string]Counter, NumCounters)
	for c, f := range counterFields {
		m[f] = Counter(c)
	}
	return m
}()

// AddField adds v to the figure a plain field names.
func (t *Totals) AddField(field string, v int64) error {
	if c, ok := counterByField[field]; ok {
		t.C[c] += v
		return nil
	}
	if len(field) >= 2 {
		for d, p := range durationPrefix {
			if field[0] != p {
				continue
			}
			if field[1:] == "z" {
				t.H[d].Add(hist.ZeroBin, v)
				return nil
			}
			b, err := strconv.ParseInt(field[1:], 10, 32)
			if err != nil {
				break
			}
			t.H[d].Add(int32(b), v)
			return nil
		}
	}
	return fmt.Errorf("unknown bucket field %q", field)
}

// AddHash adds a hash read back from Redis (field -> decimal value).
func (t *Totals) AddHash(h map[string]string) error {
	for f, s := range h {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("bucket field %q: value %q: %w", f, s, err)
		}
		if err := t.AddField(f, v); err != nil {
			return err
		}
	}
	return nil
}

// AddHourHash adds the fields of an hourly detail hash whose hour of the day is in [fromHour, toHour).
func (t *Totals) AddHourHash(h map[string]string, fromHour, toHour int) error {
	for f, s := range h {
		if f == PackedHoursField {
			if err := EachPackedHours(s, func(hh int, f, s string) error {
				if hh < fromHour || hh >= toHour {
					return nil
				}
				v, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return fmt.Errorf("bucket field %q: value %q: %w", f, s, err)
				}
				return t.AddField(f, v)
			}); err != nil {
				return err
			}
			continue
		}
		if err := t.addHourField(f, s, fromHour, toHour); err != nil {
			return err
		}
	}
	return nil
}

func (t *Totals) addHourField(f, s string, fromHour, toHour int) error {
	hh, field, err := SplitHourField(f)
	if err != nil {
		return err
	}
	if hh < fromHour || hh >= toHour {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("bucket field %q: value %q: %w", f, s, err)
	}
	return t.AddField(field, v)
}

// Merge adds o into t.
func (t *Totals) Merge(o *Totals) {
	for i := range t.C {
		t.C[i] += o.C[i]
	}
	for i := range t.H {
		t.H[i].Merge(o.H[i])
	}
}
