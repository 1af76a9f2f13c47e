package rulesfile

import (
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

var priorities = map[string]ticketpulsev1.Priority{
	"low":    ticketpulsev1.Priority_PRIORITY_LOW,
	"normal": ticketpulsev1.Priority_PRIORITY_NORMAL,
	"high":   ticketpulsev1.Priority_PRIORITY_HIGH,
	"urgent": ticketpulsev1.Priority_PRIORITY_URGENT,
}

var priorityWords = []string{"low", "normal", "high", "urgent"}

// pauseStatuses are the statuses a policy may pause in. Solved and closed are not among them:
// they stop the clocks for good, so listing them would suggest a ticket resumes from there.
var pauseStatuses = map[string]ticketpulsev1.TicketStatus{
	"new":     ticketpulsev1.TicketStatus_TICKET_STATUS_NEW,
	"open":    ticketpulsev1.TicketStatus_TICKET_STATUS_OPEN,
	"pending": ticketpulsev1.TicketStatus_TICKET_STATUS_PENDING,
	"on_hold": ticketpulsev1.TicketStatus_TICKET_STATUS_ON_HOLD,
}

var pauseWords = []string{"new", "open", "pending", "on_hold"}

// defaultPause is what a policy without pause_statuses pauses in: waiting on the customer.
func defaultPause() []ticketpulsev1.TicketStatus {
	return []ticketpulsev1.TicketStatus{ticketpulsev1.TicketStatus_TICKET_STATUS_PENDING, ticketpulsev1.TicketStatus_TICKET_STATUS_ON_HOLD}
}

func (l *loader) slaPolicies(n *yaml.Node, path string, refs *tenantRefs) []*Policy {
	items, _ := l.List(n, path, "SLA policies")
	first := map[string]int{}
	out := make([]*Policy, 0, len(items))
	for i, item := range items {
		out = append(out, l.slaPolicy(item, yamlconf.Index(path, i), refs, first))
	}
	return out
}

func (l *loader) slaPolicy(n *yaml.Node, path string, refs *tenantRefs, names map[string]int) *Policy {
	p := &Policy{Pause: defaultPause(), AtRisk: DefaultAtRisk}
	f, ok := l.Fields(n, path, "name", "match", "calendar", "pause_statuses", "at_risk", "escalation", "targets")
	if !ok {
		return p
	}
	p.Name = l.NameField(f, n, path, namePattern, nameRule, names)
	if e, ok := f["match"]; ok {
		p.Match = l.match(e.Val, path+".match")
	}
	if e, ok := f["calendar"]; ok {
		if name, ok := l.ref(e.Val, path+".calendar", "calendar", refs.calendarNames); ok {
			p.CalendarName, p.Calendar = name, refs.calendars[name]
		}
	}
	if e, ok := f["pause_statuses"]; ok {
		p.Pause = l.pause(e.Val, path+".pause_statuses")
	}
	if e, ok := f["at_risk"]; ok {
		p.AtRisk = l.atRisk(e.Val, path+".at_risk")
	}
	p.Escalation = l.escalationRef(f, n, path, refs)
	if e, ok := f["targets"]; ok {
		p.Targets, p.Default = l.targets(e.Val, path+".targets")
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing targets: (the SLA targets by priority)", path)
	}
	return p
}

// escalationRef reads the escalation: every policy and rule must name.
func (l *loader) escalationRef(f map[string]yamlconf.Pair, n *yaml.Node, path string, refs *tenantRefs) string {
	e, ok := f["escalation"]
	if !ok {
		l.Addf(yamlconf.Resolve(n), "%s: missing escalation: (the escalation policy to raise)", path)
		return ""
	}
	name, _ := l.ref(e.Val, path+".escalation", "escalation policy", refs.escalationNames)
	return name
}

func (l *loader) match(n *yaml.Node, path string) Match {
	var m Match
	f, _ := l.Fields(n, path, "priority", "team", "channel", "tag")
	if e, ok := f["priority"]; ok {
		words, _ := l.UniqueItems(e.Val, path+".priority", "at least one priority (leave priority: out to match any)",
			func(n *yaml.Node, path string) (string, bool) { return l.OneOf(n, path, "priority", priorityWords...) })
		for _, w := range words {
			m.Priorities = append(m.Priorities, priorities[w])
		}
	}
	strs := func(key, want string) []string {
		e, ok := f[key]
		if !ok {
			return nil
		}
		out, _ := l.UniqueItems(e.Val, path+"."+key, want, l.Str)
		return out
	}
	m.Teams = strs("team", "at least one team (leave team: out to match any)")
	m.Channels = strs("channel", "at least one channel (leave channel: out to match any)")
	m.Tags = strs("tag", "at least one tag (leave tag: out to match any)")
	return m
}

// pause reads pause_statuses; an empty list is a policy whose clocks never pause.
func (l *loader) pause(n *yaml.Node, path string) []ticketpulsev1.TicketStatus {
	words, _ := l.UniqueItems(n, path, "", func(n *yaml.Node, path string) (string, bool) {
		s, ok := l.Str(n, path)
		if !ok {
			return "", false
		}
		if s == "solved" || s == "closed" {
			l.Addf(n, "%s: %s cannot pause the clocks: they stop for good when a ticket is solved or closed", path, s)
			return "", false
		}
		return l.OneOf(n, path, "status", pauseWords...)
	})
	out := make([]ticketpulsev1.TicketStatus, 0, len(words))
	for _, w := range words {
		out = append(out, pauseStatuses[w])
	}
	return out
}

// share reads a share written as a number (0.8) or a percentage ("80%"), without judging its
// range; false when it is neither.
func share(n *yaml.Node) (float64, bool) {
	n = yamlconf.Resolve(n)
	if f, ok := yamlconf.AsNumber(n); ok {
		return f, true
	}
	return percent(n)
}

// percent reads "80%" as 0.8.
func percent(n *yaml.Node) (float64, bool) {
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
func (l *loader) atRisk(n *yaml.Node, path string) float64 {
	r := yamlconf.Resolve(n)
	if r.Kind == yaml.ScalarNode && r.ShortTag() == "!!str" && r.Value == "off" {
		return 0
	}
	f, ok := share(r)
	if !ok || !(f > 0 && f < 1) {
		l.Addf(r, "%s: want a share between 0 and 1 such as 0.8 or 80%%, or off; not %s", path, yamlconf.Shown(r))
		return DefaultAtRisk
	}
	return f
}

// targets reads the targets by priority; default: applies to the priorities not listed.
func (l *loader) targets(n *yaml.Node, path string) (map[ticketpulsev1.Priority]Targets, *Targets) {
	out := map[ticketpulsev1.Priority]Targets{}
	var def *Targets
	entries, ok := l.Pairs(n, path)
	if ok && len(entries) == 0 {
		l.Addf(yamlconf.Resolve(n), "%s: want at least one of low, normal, high, urgent, default", path)
	}
	for _, e := range entries {
		key := e.Key.Value
		pr, known := priorities[key]
		if !known && key != "default" {
			l.Addf(e.Key, "%s: unknown priority %q (want one of low, normal, high, urgent, default)", path, key)
			continue
		}
		t := l.target(e.Val, yamlconf.Join(path, key))
		if known {
			out[pr] = t
		} else {
			def = &t
		}
	}
	return out, def
}

func (l *loader) target(n *yaml.Node, path string) Targets {
	var t Targets
	f, ok := l.Fields(n, path, "first_response", "next_response", "resolution")
	if !ok {
		return t
	}
	if len(f) == 0 {
		l.Addf(yamlconf.Resolve(n), "%s: set at least one of first_response, next_response, resolution", path)
	}
	read := func(key string) time.Duration {
		e, ok := f[key]
		if !ok {
			return 0
		}
		d, _ := l.DurationWith(e.Val, path+"."+key, minuteOrMore)
		return d
	}
	t.FirstResponse, t.NextResponse, t.Resolution = read("first_response"), read("next_response"), read("resolution")
	return t
}
