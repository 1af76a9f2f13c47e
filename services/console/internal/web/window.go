package web

import (
	"fmt"
	"net/url"
	"time"
	_ "time/tzdata" // time zones resolve on hosts without a zoneinfo database

	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// windowSel is the window a page shows, as its query parameters name it.
type windowSel struct {
	// Rolling is 24h, 7d or 30d, or "range" for From..To (dates, To included).
	Rolling, From, To, TZ string
}

// Query is the selection as query parameters, for links that keep it.
func (s windowSel) Query() url.Values {
	v := url.Values{"window": {s.Rolling}}
	if s.TZ != "" {
		v.Set("tz", s.TZ)
	}
	if s.Rolling == "range" {
		v.Set("from", s.From)
		v.Set("to", s.To)
	}
	return v
}

// maxRangeDays bounds an explicit range: the services answer up to 10 years.
const maxRangeDays = 3660

// zone is the IANA time zone tz names, UTC when empty; the error names the tz parameter.
func zone(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	if len(tz) > 64 || tz == "Local" {
		return nil, fmt.Errorf("tz: %q is not an IANA time zone name (e.g. Europe/Berlin)", tz)
	}
	l, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("tz: %q is not an IANA time zone name (e.g. Europe/Berlin)", tz)
	}
	return l, nil
}

// parseWindow reads window, from, to and tz; an error names the parameter and why.
func parseWindow(q url.Values) (*tpv1.Window, windowSel, error) {
	s := windowSel{Rolling: q.Get("window"), From: q.Get("from"), To: q.Get("to"), TZ: q.Get("tz")}
	if s.Rolling == "" {
		s.Rolling = "24h"
	}
	loc, err := zone(s.TZ)
	if err != nil {
		return nil, s, err
	}
	switch s.Rolling {
	case "24h", "7d", "30d":
		return &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: s.Rolling}, TimeZone: s.TZ}, s, nil
	case "range":
	default:
		return nil, s, fmt.Errorf("window: %q: want 24h, 7d, 30d or range", s.Rolling)
	}
	from, err := time.ParseInLocation(time.DateOnly, s.From, loc)
	if err != nil {
		return nil, s, fmt.Errorf("from: %q is not a date (YYYY-MM-DD)", s.From)
	}
	to, err := time.ParseInLocation(time.DateOnly, s.To, loc)
	if err != nil {
		return nil, s, fmt.Errorf("to: %q is not a date (YYYY-MM-DD)", s.To)
	}
	to = to.AddDate(0, 0, 1) // the last day is included
	switch {
	case !to.After(from):
		return nil, s, fmt.Errorf("to: %s is before from %s", s.To, s.From)
	case to.Sub(from) > maxRangeDays*24*time.Hour:
		return nil, s, fmt.Errorf("to: the range is longer than %d days", maxRangeDays)
	}
	return &tpv1.Window{Kind: &tpv1.Window_Range{Range: &tpv1.TimeRange{From: timestamppb.New(from), To: timestamppb.New(to)}}, TimeZone: s.TZ}, s, nil
}
