package slapolicy

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// NamePattern is the shape of every name a rules file defines (calendars, policies, rules): the
// tenant-id shape, so names are safe in subjects, keys and URLs as they are.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// NameRule says NamePattern in words, for problems.
const NameRule = "must match [a-z0-9][a-z0-9_-]{0,62}"

// MinuteOrMore is the rule of every SLA target: days allowed, at least a minute.
var MinuteOrMore = yamlconf.DurationRule{Days: true, Min: time.Minute}

var priorities = map[string]tpv1.Priority{
	"low":    tpv1.Priority_PRIORITY_LOW,
	"normal": tpv1.Priority_PRIORITY_NORMAL,
	"high":   tpv1.Priority_PRIORITY_HIGH,
	"urgent": tpv1.Priority_PRIORITY_URGENT,
}

var priorityWords = []string{"low", "normal", "high", "urgent"}

// pauseStatuses are the statuses a policy may pause in. Solved and closed are not among them:
// they stop the clocks for good, so listing them would suggest a ticket resumes from there.
var pauseStatuses = map[string]tpv1.TicketStatus{
	"new":     tpv1.TicketStatus_TICKET_STATUS_NEW,
	"open":    tpv1.TicketStatus_TICKET_STATUS_OPEN,
	"pending": tpv1.TicketStatus_TICKET_STATUS_PENDING,
	"on_hold": tpv1.TicketStatus_TICKET_STATUS_ON_HOLD,
}

var pauseWords = []string{"new", "open", "pending", "on_hold"}

// Calendars are a tenant's calendars as read so far. Names are recorded even when their
// definition has problems, so a reference to a broken calendar is not also "unknown".
type Calendars struct {
	Names  []string
	ByName map[string]*calendar.Calendar
}

// Reader reads the SLA part of a rules file (a tenant's calendars: and sla_policies:) into the
// problems of L. A value with a problem is left at its zero value and reading goes on, so one
// pass reports every problem.
type Reader struct {
	L *yamlconf.Loader
}

// EscalationFunc reads the escalation: field of an SLA policy (f are its fields, n the policy).
type EscalationFunc func(f map[string]yamlconf.Pair, n *yaml.Node, path string) string

// DefinedName checks the name of a definition written as a mapping key.
func (r Reader) DefinedName(key *yaml.Node, path string) bool {
	if !NamePattern.MatchString(key.Value) {
		r.L.Addf(key, "%s: name %q %s", path, key.Value, NameRule)
		return false
	}
	return true
}

// Ref reads a reference to one of the tenant's definitions of a kind (what).
func (r Reader) Ref(n *yaml.Node, path, what string, names []string) (string, bool) {
	name, ok := r.L.Str(n, path)
	if !ok {
		return "", false
	}
	switch {
	case slices.Contains(names, name):
		return name, true
	case len(names) == 0:
		r.L.Addf(n, "%s: unknown %s %q (the tenant defines none)", path, what, name)
	default:
		r.L.Addf(n, "%s: unknown %s %q (want one of %s)", path, what, name, strings.Join(names, ", "))
	}
	return "", false
}

// Calendars reads a tenant's calendars: into cals.
func (r Reader) Calendars(n *yaml.Node, path string, cals *Calendars) {
	if cals.ByName == nil {
		cals.ByName = map[string]*calendar.Calendar{}
	}
	entries, _ := r.L.Pairs(n, path)
	for _, e := range entries {
		valid := r.DefinedName(e.Key, path)
		c := r.calendar(e.Val, yamlconf.Join(path, e.Key.Value))
		if !valid {
			continue
		}
		cals.Names = append(cals.Names, e.Key.Value)
		if c != nil {
			cals.ByName[e.Key.Value] = c
		}
	}
}

// calendar reads one calendar: time_zone:, hours: (see yamlconf.Calendar) and holidays:; nil
// when it has problems.
func (r Reader) calendar(n *yaml.Node, path string) *calendar.Calendar {
	c, _ := r.L.Calendar(n, path, yamlconf.CalendarSpec{
		What:      "working",
		HoursHint: "the working hours, e.g. mon-fri: 09:00-17:00",
		Holidays:  r.holidays,
	})
	return c
}

// holidays reads the days off, YYYY-MM-DD, one or a list.
func (r Reader) holidays(n *yaml.Node, path string) []string {
	out, _ := r.L.UniqueItems(n, path, "", func(item *yaml.Node, path string) (string, bool) {
		s, ok := r.L.Str(item, path)
		if !ok {
			return "", false
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			r.L.Addf(item, "%s: %q is not a date (write YYYY-MM-DD)", path, s)
			return "", false
		}
		return s, true
	})
	return out
}

// Policies reads a tenant's sla_policies: in file order.
func (r Reader) Policies(n *yaml.Node, path string, cals *Calendars, escalation EscalationFunc) []*Policy {
	items, _ := r.L.List(n, path, "SLA policies")
	first := map[string]int{}
	out := make([]*Policy, 0, len(items))
	for i, item := range items {
		out = append(out, r.policy(item, yamlconf.Index(path, i), cals, escalation, first))
	}
	return out
}

func (r Reader) policy(n *yaml.Node, path string, cals *Calendars, escalation EscalationFunc, names map[string]int) *Policy {
	p := &Policy{Pause: DefaultPause(), AtRisk: DefaultAtRisk}
	f, ok := r.L.Fields(n, path, "name", "match", "calendar", "pause_statuses", "at_risk", "escalation", "targets")
	if !ok {
		return p
	}
	p.Name = r.L.NameField(f, n, path, NamePattern, NameRule, names)
	if e, ok := f["match"]; ok {
		p.Match = r.Match(e.Val, path+".match")
	}
	if e, ok := f["calendar"]; ok {
		if name, ok := r.Ref(e.Val, path+".calendar", "calendar", cals.Names); ok {
			p.CalendarName, p.Calendar = name, cals.ByName[name]
		}
	}
	if e, ok := f["pause_statuses"]; ok {
		p.Pause = r.pause(e.Val, path+".pause_statuses")
	}
	if e, ok := f["at_risk"]; ok {
		p.AtRisk = r.atRisk(e.Val, path+".at_risk")
	}
	p.Escalation = escalation(f, n, path)
	if e, ok := f["targets"]; ok {
		p.Targets, p.Default = r.targets(e.Val, path+".targets")
	} else {
		r.L.Addf(yamlconf.Resolve(n), "%s: missing targets: (the SLA targets by priority)", path)
	}
	return p
}

// Match reads a match: (of an SLA policy or a ticket rule).
func (r Reader) Match(n *yaml.Node, path string) Match {
	var m Match
	f, _ := r.L.Fields(n, path, "priority", "team", "channel", "tag")
	if e, ok := f["priority"]; ok {
		words, _ := r.L.UniqueItems(e.Val, path+".priority", "at least one priority (leave priority: out to match any)",
			func(n *yaml.Node, path string) (string, bool) {
				return r.L.OneOf(n, path, "priority", priorityWords...)
			})
		for _, w := range words {
			m.Priorities = append(m.Priorities, priorities[w])
		}
	}
	strs := func(key, want string) []string {
		e, ok := f[key]
		if !ok {
			return nil
		}
		out, _ := r.L.UniqueItems(e.Val, path+"."+key, want, r.L.Str)
		return out
	}
	m.Teams = strs("team", "at least one team (leave team: out to match any)")
	m.Channels = strs("channel", "at least one channel (leave channel: out to match any)")
	m.Tags = strs("tag", "at least one tag (leave tag: out to match any)")
	return m
}

// pause reads pause_statuses; an empty list is a policy whose clocks never pause.
func (r Reader) pause(n *yaml.Node, path string) []tpv1.TicketStatus {
	words, _ := r.L.UniqueItems(n, path, "", func(n *yaml.Node, path string) (string, bool) {
		s, ok := r.L.Str(n, path)
		if !ok {
			return "", false
		}
		if s == "solved" || s == "closed" {
			r.L.Addf(n, "%s: %s cannot pause the clocks: they stop for good when a ticket is solved or closed", path, s)
			return "", false
		}
		return r.L.OneOf(n, path, "status", pauseWords...)
	})
	out := make([]tpv1.TicketStatus, 0, len(words))
	for _, w := range words {
		out = append(out, pauseStatuses[w])
	}
	return out
}

// Share reads a share written as a number (0.8) or a percentage ("80%"), without judging its
// range; false when it is neither.
func Share(n *yaml.Node) (float64, bool) {
	n = yamlconf.Resolve(n)
	if f, ok := yamlconf.AsNumber(n); ok {
		return f, true
	}
	return Percent(n)
}

// Percent reads "80%" as 0.8.
func Percent(n *yaml.Node) (float64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return 0, false
	}
	num, ok := strings.CutSuffix(n.Value, "%")
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f / 100, true
}

// atRisk reads at_risk: a share strictly between 0 and 1, or off.
func (r Reader) atRisk(n *yaml.Node, path string) float64 {
	v := yamlconf.Resolve(n)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value == "off" {
		return 0
	}
	f, ok := Share(v)
	if !ok || !(f > 0 && f < 1) {
		r.L.Addf(v, "%s: want a share between 0 and 1 such as 0.8 or 80%%, or off; not %s", path, yamlconf.Shown(v))
		return DefaultAtRisk
	}
	return f
}

// targets reads the targets by priority; default: applies to the priorities not listed.
func (r Reader) targets(n *yaml.Node, path string) (map[tpv1.Priority]Targets, *Targets) {
	out := map[tpv1.Priority]Targets{}
	var def *Targets
	entries, ok := r.L.Pairs(n, path)
	if ok && len(entries) == 0 {
		r.L.Addf(yamlconf.Resolve(n), "%s: want at least one of low, normal, high, urgent, default", path)
	}
	for _, e := range entries {
		key := e.Key.Value
		pr, known := priorities[key]
		if !known && key != "default" {
			r.L.Addf(e.Key, "%s: unknown priority %q (want one of low, normal, high, urgent, default)", path, key)
			continue
		}
		t := r.target(e.Val, yamlconf.Join(path, key))
		if known {
			out[pr] = t
		} else {
			def = &t
		}
	}
	return out, def
}

func (r Reader) target(n *yaml.Node, path string) Targets {
	var t Targets
	f, ok := r.L.Fields(n, path, "first_response", "next_response", "resolution")
	if !ok {
		return t
	}
	if len(f) == 0 {
		r.L.Addf(yamlconf.Resolve(n), "%s: set at least one of first_response, next_response, resolution", path)
	}
	read := func(key string) time.Duration {
		e, ok := f[key]
		if !ok {
			return 0
		}
		d, _ := r.L.DurationWith(e.Val, path+"."+key, MinuteOrMore)
		return d
	}
	t.FirstResponse, t.NextResponse, t.Resolution = read("first_response"), read("next_response"), read("resolution")
	return t
}
