package export

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/grpcerr"
)

// Problem is a request the export refuses: the query parameter (or path part) at fault and why.
type Problem struct {
	Field  string
	Reason string
}

func (p *Problem) Error() string { return p.Field + ": " + p.Reason }

// Granularities an export accepts, as the granularity parameter spells them.
var Granularities = []string{"hour", "day", "week", "month"}

// MaxHourlyDays bounds an hourly export's range: two years of hours (17,568 rows a series) is
// already more than a spreadsheet holds; longer ranges are exported by day.
const MaxHourlyDays = 732

// maxParamBytes bounds each parameter's value; the longest legitimate one is a time zone name.
const maxParamBytes = 256

// params are the query parameters an export knows; any other is refused, so a misspelt one is
// not silently ignored.
var params = []string{"from", "to", "rolling", "granularity", "time_zone", "team_id", "agent_id",
	"min_first_response_seconds", "min_resolution_seconds", "max_rating", "min_reopens", "sla_breached", "unresolved"}

// maxFilterSeconds bounds the duration filters as ListTicketKpis does (about 31,700 years).
const maxFilterSeconds = 1e12

// ParseQuery checks an export's query string. from and to are RFC 3339 instants or dates
// (YYYY-MM-DD, local midnight in time_zone); rolling (7d, 30d, 90d, 365d, ...) replaces them;
// granularity defaults to day, time_zone to UTC. Errors are *Problem.
func ParseQuery(tenant string, v url.Values) (Query, error) {
	q := Query{Tenant: tenant, Granularity: "day", TimeZone: "UTC"}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range v {
			if !yield(k) {
				return
			}
		}
	}) {
		vals := v[name]
		switch {
		case name == "":
			return q, &Problem{"query", "a parameter without a name"}
		case !slices.Contains(params, name):
			return q, &Problem{limitText(name), fmt.Sprintf("unknown parameter: want %s", strings.Join(params, ", "))}
		case len(vals) > 1:
			return q, &Problem{name, fmt.Sprintf("given %d times, want once", len(vals))}
		case len(vals[0]) > maxParamBytes:
			return q, &Problem{name, fmt.Sprintf("%d bytes, at most %d allowed", len(vals[0]), maxParamBytes)}
		}
	}
	if g := v.Get("granularity"); g != "" {
		if !slices.Contains(Granularities, g) {
			return q, &Problem{"granularity", fmt.Sprintf("%q: want one of %s", limitText(g), strings.Join(Granularities, ", "))}
		}
		q.Granularity = g
	}
	if tz := v.Get("time_zone"); tz != "" {
		q.TimeZone = tz
	}
	loc, err := location(q.TimeZone)
	if err != nil {
		return q, err
	}
	q.TeamID, q.AgentID = v.Get("team_id"), v.Get("agent_id")
	for name, id := range map[string]string{"team_id": q.TeamID, "agent_id": q.AgentID} {
		if len(id) > grpcerr.MaxIDBytes {
			return q, &Problem{name, fmt.Sprintf("%d bytes, at most %d allowed", len(id), grpcerr.MaxIDBytes)}
		}
	}
	if q.TeamID != "" && q.AgentID != "" {
		return q, &Problem{"team_id", "give at most one of agent_id and team_id"}
	}
	if q.Tickets, err = ticketFilter(v); err != nil {
		return q, err
	}
	from, to, rolling := v.Get("from"), v.Get("to"), v.Get("rolling")
	if rolling != "" {
		if from != "" || to != "" {
			return q, &Problem{"rolling", "give either rolling or from and to, not both"}
		}
		q.Rolling = rolling
		if q.Granularity == "hour" && !slices.Contains([]string{"1h", "24h", "7d", "30d", "90d", "365d"}, rolling) {
			return q, &Problem{"granularity", fmt.Sprintf("hour is allowed up to %d days; rolling %q is longer or unknown: use granularity=day", MaxHourlyDays, limitText(rolling))}
		}
		return q, nil
	}
	if from == "" {
		return q, &Problem{"from", "required (or rolling): an RFC 3339 instant such as 2026-03-01T00:00:00Z or a date such as 2026-03-01"}
	}
	if to == "" {
		return q, &Problem{"to", "required (or rolling): an RFC 3339 instant such as 2026-04-01T00:00:00Z or a date such as 2026-04-01"}
	}
	if q.From, err = instant("from", from, loc); err != nil {
		return q, err
	}
	if q.To, err = instant("to", to, loc); err != nil {
		return q, err
	}
	if !q.From.Before(q.To) {
		return q, &Problem{"to", "must be after from"}
	}
	if q.Granularity == "hour" && q.To.Sub(q.From) > MaxHourlyDays*24*time.Hour {
		return q, &Problem{"to", fmt.Sprintf("an hourly export covers at most %d days, this range %.0f; use granularity=day", MaxHourlyDays, q.To.Sub(q.From).Hours()/24)}
	}
	return q, nil
}

// ticketFilter reads the tickets export's filter parameters.
func ticketFilter(v url.Values) (TicketFilter, error) {
	var f TicketFilter
	seconds := func(name string) (*float64, error) {
		s := v.Get(name)
		if s == "" {
			return nil, nil
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || x < 0 || x > maxFilterSeconds {
			return nil, &Problem{name, fmt.Sprintf("%q: want a number of seconds from 0 to %g", limitText(s), float64(maxFilterSeconds))}
		}
		return &x, nil
	}
	integer := func(name string, lo, hi int64) (*int32, error) {
		s := v.Get(name)
		if s == "" {
			return nil, nil
		}
		x, err := strconv.ParseInt(s, 10, 32)
		if err != nil || x < lo || x > hi {
			return nil, &Problem{name, fmt.Sprintf("%q: want a whole number from %d to %d", limitText(s), lo, hi)}
		}
		n := int32(x)
		return &n, nil
	}
	boolean := func(name string) (bool, error) {
		switch s := v.Get(name); s {
		case "", "false":
			return false, nil
		case "true":
			return true, nil
		default:
			return false, &Problem{name, fmt.Sprintf("%q: want true or false", limitText(s))}
		}
	}
	var err error
	if f.MinFirstResponseSeconds, err = seconds("min_first_response_seconds"); err != nil {
		return f, err
	}
	if f.MinResolutionSeconds, err = seconds("min_resolution_seconds"); err != nil {
		return f, err
	}
	if f.MaxRating, err = integer("max_rating", 1, 5); err != nil {
		return f, err
	}
	if f.MinReopens, err = integer("min_reopens", 0, math.MaxInt32); err != nil {
		return f, err
	}
	if f.SLABreached, err = boolean("sla_breached"); err != nil {
		return f, err
	}
	f.Unresolved, err = boolean("unresolved")
	return f, err
}

// instant reads an RFC 3339 instant or a date at local midnight in loc.
func instant(field, s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, &Problem{field, fmt.Sprintf("%q: want an RFC 3339 instant such as 2026-03-01T00:00:00Z or a date such as 2026-03-01", limitText(s))}
}

func location(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, &Problem{"time_zone", `"Local" is not a zone name; use an IANA name such as "Europe/Berlin"`}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &Problem{"time_zone", fmt.Sprintf("unknown time zone %q: want an IANA name such as \"Europe/Berlin\"", limitText(name))}
	}
	return loc, nil
}

// limitText bounds caller text echoed in an error.
func limitText(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "..."
}
