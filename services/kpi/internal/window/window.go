// Package window turns a requested KPI window (an explicit range or a named rolling window, in a
// time zone) into the range of UTC hours whose buckets answer it, and that range into the fewest
// bucket reads that cover it exactly.
package window

import (
	"fmt"
	"strings"
	"sync"
	"time"

	// The answer of a day window depends on the zone rules; embedding them keeps that from
	// depending on what the host happens to have installed.
	_ "time/tzdata"

	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// MaxYears is the longest window a request may ask for, in calendar years: a range may end at
// most MaxYears years (UTC) after it starts.
const MaxYears = 10

// MaxHours bounds any resolved window: MaxYears years (at most 3653 days) widened by at most one
// hour at each end.
const MaxHours = (MaxYears*365+(MaxYears+3)/4)*24 + 2

// MinHour and MaxHour bound the hours a timestamp of the API can name (years 1 to 9999).
var (
	MinHour = HourOf(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC))
	MaxHour = HourOf(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
)

// Field names of the request, as FieldError reports them.
const (
	FieldWindow   = "window"
	FieldRolling  = "window.rolling"
	FieldFrom     = "window.range.from"
	FieldTo       = "window.range.to"
	FieldTimeZone = "window.time_zone"
)

// FieldError says which field of the window is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Rolling windows: hour windows count whole UTC hours back from now, day windows count local
// calendar days, and "all" counts local calendar years.
var (
	rollingHours = map[string]int{"1h": 1, "24h": 24}
	rollingDays  = map[string]int{"7d": 7, "30d": 30, "90d": 90, "365d": 365}
)

// RollingAll is the rolling window of everything kept, up to a fixed horizon: it starts at local
// midnight of January 1 of the year MaxYears-1 years before the current one, so it holds the
// current and the nine previous calendar years and never exceeds MaxYears years.
const RollingAll = "all"

// RollingNames are the recent rolling windows, in increasing length: the ones the KPI snapshots
// hold.
var RollingNames = []string{"1h", "24h", "7d", "30d"}

// LongRollingNames are the longer rolling windows a request may ask for, in increasing length.
var LongRollingNames = []string{"90d", "365d", RollingAll}

// Resolved is a window resolved to hourly buckets.
type Resolved struct {
	// FromHour and ToHour are unix hours (hours since the epoch, UTC); the window is [FromHour, ToHour).
	FromHour, ToHour int64
	// TimeZone is the zone the request named, "UTC" when it named none.
	TimeZone      string
	AlignedToHour bool
	Note          string
}

// Proto is the window as the API reports it.
func (r Resolved) Proto() *ticketpulsev1.ResolvedWindow {
	return &ticketpulsev1.ResolvedWindow{
		From:          timestamppb.New(HourTime(r.FromHour)),
		To:            timestamppb.New(HourTime(r.ToHour)),
		TimeZone:      r.TimeZone,
		AlignedToHour: r.AlignedToHour,
		Note:          r.Note,
	}
}

// HourTime is the start of a unix hour.
func HourTime(hour int64) time.Time { return time.Unix(hour*3600, 0).UTC() }

// HourOf is the unix hour containing t.
func HourOf(t time.Time) int64 { return floorDiv(t.Unix(), 3600) }

// Resolve resolves w at instant now. Errors are *FieldError.
func Resolve(w *ticketpulsev1.Window, now time.Time) (Resolved, error) {
	if w == nil || w.GetKind() == nil {
		return Resolved{}, &FieldError{FieldWindow, "required: set range or rolling"}
	}
	loc, err := location(w.GetTimeZone())
	if err != nil {
		return Resolved{}, err
	}
	var r Resolved
	switch k := w.GetKind().(type) {
	case *ticketpulsev1.Window_Range:
		r, err = resolveRange(k.Range)
	case *ticketpulsev1.Window_Rolling:
		r, err = resolveRolling(k.Rolling, now, loc)
	default:
		return Resolved{}, &FieldError{FieldWindow, "unknown kind"}
	}
	if err != nil {
		return Resolved{}, err
	}
	r.TimeZone = loc.String()
	return r, nil
}

func location(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	// "Local" would make the answer depend on the server's own setting.
	if name == "Local" {
		return nil, &FieldError{FieldTimeZone, `"Local" is not a zone name; use an IANA name such as "Europe/Berlin"`}
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &FieldError{FieldTimeZone, fmt.Sprintf("unknown time zone %q: want an IANA name such as \"Europe/Berlin\"", name)}
	}
	zones.Store(name, loc)
	return loc, nil
}

// zones caches loaded locations: LoadLocation parses the zone data on every call, and only the
// few hundred valid names are ever stored.
var zones sync.Map

func resolveRange(rg *ticketpulsev1.TimeRange) (Resolved, error) {
	if rg.GetFrom() == nil {
		return Resolved{}, &FieldError{FieldFrom, "required"}
	}
	if err := rg.GetFrom().CheckValid(); err != nil {
		return Resolved{}, &FieldError{FieldFrom, "invalid timestamp: " + err.Error()}
	}
	if rg.GetTo() == nil {
		return Resolved{}, &FieldError{FieldTo, "required"}
	}
	if err := rg.GetTo().CheckValid(); err != nil {
		return Resolved{}, &FieldError{FieldTo, "invalid timestamp: " + err.Error()}
	}
	from, to := rg.GetFrom().AsTime(), rg.GetTo().AsTime()
	if !from.Before(to) {
		return Resolved{}, &FieldError{FieldTo, "must be after from"}
	}
	if limit := from.UTC().AddDate(MaxYears, 0, 0); to.After(limit) {
		return Resolved{}, &FieldError{FieldTo, fmt.Sprintf("range from %s to %s is longer than %d years: to must be at most %s",
			from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), MaxYears, limit.Format(time.RFC3339Nano))}
	}
	r := Resolved{FromHour: HourOf(from), ToHour: ceilHour(to)}
	var widened []string
	if !onHour(from) {
		widened = append(widened, "from "+from.UTC().Format(time.RFC3339Nano)+" floored")
	}
	if !onHour(to) {
		widened = append(widened, "to "+to.UTC().Format(time.RFC3339Nano)+" ceiled")
	}
	if len(widened) > 0 {
		r.AlignedToHour = true
		r.Note = "figures are kept per UTC hour: " + strings.Join(widened, " and ") + " to the enclosing hour"
	}
	return r, nil
}

func resolveRolling(name string, now time.Time, loc *time.Location) (Resolved, error) {
	end := HourOf(now) + 1
	if n, ok := rollingHours[name]; ok {
		return Resolved{FromHour: HourOf(now.Add(-time.Duration(n) * time.Hour)), ToHour: end}, nil
	}
	// time.Date in the zone, not a multiple of 24h, so a DST change inside the window moves
	// midnight by the zone's own rules.
	l := now.In(loc)
	var start time.Time
	if n, ok := rollingDays[name]; ok {
		start = time.Date(l.Year(), l.Month(), l.Day()-(n-1), 0, 0, 0, 0, loc)
	} else if name == RollingAll {
		start = time.Date(l.Year()-(MaxYears-1), time.January, 1, 0, 0, 0, 0, loc)
	} else {
		names := append(append([]string(nil), RollingNames...), LongRollingNames...)
		return Resolved{}, &FieldError{FieldRolling, fmt.Sprintf("unknown rolling window %q: want one of %s", name, strings.Join(names, ", "))}
	}
	r := Resolved{FromHour: HourOf(start), ToHour: end}
	if !onHour(start) {
		r.AlignedToHour = true
		r.Note = fmt.Sprintf("local midnight %s is not on a UTC hour; the window starts at the enclosing hour %s",
			start.Format(time.RFC3339), HourTime(r.FromHour).In(loc).Format(time.RFC3339))
	}
	return r, nil
}

func onHour(t time.Time) bool { return t.Unix()%3600 == 0 && t.Nanosecond() == 0 }

func ceilHour(t time.Time) int64 {
	h := HourOf(t)
	if !onHour(t) {
		h++
	}
	return h
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
