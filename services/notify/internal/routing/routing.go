// Package routing reads notify's routing file and decides, without side effects, where a
// notification about an escalation goes: which routes take its labels (Alertmanager's routing
// tree), how it is grouped, whether quiet hours, a silence or an inhibition hold it back.
//
// Labels are an escalation's labels map (tenant, rule, severity, level, targets, ticket, team,
// agent, priority, policy) plus subject_kind and, where the caller has it, escalation_id.
package routing

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
)

// DefaultGroupBy is the root route's group_by where the file sets none.
var DefaultGroupBy = []string{"tenant", "rule"}

// Defaults of the root route's timing settings, which its children inherit.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// DefaultLimits are a receiver's limits where the file sets none.
var DefaultLimits = receiver.Limits{
	Timeout:       10 * time.Second,
	Deadline:      time.Hour,
	RatePerSecond: 1,
	Burst:         5,
	Concurrency:   2,
}

// EveryLabel is the group_by value that groups by every label, so each escalation is a group.
const EveryLabel = "..."

// EscalationIDLabel names an escalation in Inhibited, so that it never inhibits itself.
const EscalationIDLabel = "escalation_id"

// Config is a loaded routing file.
type Config struct {
	// File is the routing file's name as given to Load or Parse.
	File string
	// Receivers by name, secrets resolved; ReceiverOrder is their order in the file.
	Receivers     map[string]*receiver.Config
	ReceiverOrder []string
	// Root is the root route: it has no matchers and always has a receiver.
	Root     *Route
	Silences []*Silence
	Inhibits []*InhibitRule

	reach reach
}

// Route is one node of the routing tree, its settings already inherited from its parent.
type Route struct {
	// Receiver is set on every route (inherited when the file leaves it out).
	Receiver string
	Matchers Matchers
	// Continue lets the siblings after this route be tried when it matched.
	Continue bool
	// GroupBy are the labels notifications are grouped by, unless GroupByAll (group_by: ["..."]),
	// where every label is (one group per escalation). Empty groups everything the route takes.
	GroupBy        []string
	GroupByAll     bool
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
	// Quiet holds the quiet hours (nil: none); they are not inherited. QuietName describes them
	// for logs ("Europe/Berlin quiet hours").
	Quiet     *calendar.Calendar
	QuietName string
	Routes    []*Route
	// Path is where the route is in the file ("route", "route.routes[0]"): for logs, and
	// unique, so it keys the route's groups.
	Path string
}

// Match returns the routes that take labels, as Alertmanager does: depth-first, a route whose
// matchers match tries its children in order; a matching child ends the search among its
// siblings unless it has continue: true; a route none of whose children match is itself the
// result. The root has no matchers, so it always matches: it is the result when nothing else is.
// Match on a route whose matchers do not match returns nil.
func (r *Route) Match(labels map[string]string) []*Route {
	if !r.Matchers.Matches(labels) {
		return nil
	}
	var out []*Route
	for _, c := range r.Routes {
		m := c.Match(labels)
		out = append(out, m...)
		if len(m) > 0 && !c.Continue {
			break
		}
	}
	if len(out) == 0 {
		return []*Route{r}
	}
	return out
}

// QuietAt reports whether t is within the route's quiet hours.
func (r *Route) QuietAt(t time.Time) bool {
	if r.Quiet == nil {
		return false
	}
	// Quiet hours are the calendar's "working" time: t is in them when the nanosecond from t
	// on is.
	return r.Quiet.Elapsed(t, t.Add(time.Nanosecond)) > 0
}

// GroupKey returns the key of the group labels fall into on this route, and the labels that
// make the group (those of GroupBy the escalation has; every label for GroupByAll). A label
// with an empty value counts as missing. The key is the route's Path followed by the group's
// labels sorted by name, names and values Go-quoted, so it is stable, no value can imitate a
// separator, and two routes never share a group: route.routes[0]{"rule"="sla","tenant"="acme"}.
func (r *Route) GroupKey(labels map[string]string) (key string, groupLabels map[string]string) {
	groupLabels = map[string]string{}
	if r.GroupByAll {
		for k, v := range labels {
			if v != "" {
				groupLabels[k] = v
			}
		}
	} else {
		for _, k := range r.GroupBy {
			if v := labels[k]; v != "" {
				groupLabels[k] = v
			}
		}
	}
	var b strings.Builder
	b.WriteString(r.Path)
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(groupLabels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(groupLabels[k]))
	}
	b.WriteByte('}')
	return b.String(), groupLabels
}

// Silence holds back the notifications of the escalations its matchers match, from Starts
// (inclusive) to Ends (exclusive).
type Silence struct {
	Matchers     Matchers
	Starts, Ends time.Time
	Comment      string
}

// ActiveAt reports whether t is within the silence's window.
func (s *Silence) ActiveAt(t time.Time) bool { return !t.Before(s.Starts) && t.Before(s.Ends) }

// Silenced returns the first silence active at t whose matchers match labels, or nil.
func (c *Config) Silenced(labels map[string]string, t time.Time) *Silence {
	for _, s := range c.Silences {
		if s.ActiveAt(t) && s.Matchers.Matches(labels) {
			return s
		}
	}
	return nil
}

// InhibitRule holds back the notifications of escalations matching Target while an open
// escalation matching Source has the same values of the Equal labels.
type InhibitRule struct {
	Source, Target Matchers
	Equal          []string
}

// Inhibited returns the first rule, and the first of the open escalations' labels (sources),
// that inhibit target; nil, nil when none does. The Equal labels must be present (non-empty)
// and equal on both sides. An escalation never inhibits itself: a source with target's
// escalation_id (or, without ids, target's very labels) is skipped. As in Alertmanager, a
// target that matches both sides of a rule is not inhibited by a source that does too, so two
// such escalations do not silence each other.
func (c *Config) Inhibited(target map[string]string, open []map[string]string) (*InhibitRule, map[string]string) {
	for _, r := range c.Inhibits {
		if !r.Target.Matches(target) {
			continue
		}
		targetIsSource := r.Source.Matches(target)
		for _, src := range open {
			if sameEscalation(src, target) || !r.Source.Matches(src) || !equalLabels(r.Equal, src, target) {
				continue
			}
			if targetIsSource && r.Target.Matches(src) {
				continue
			}
			return r, src
		}
	}
	return nil, nil
}

func sameEscalation(a, b map[string]string) bool {
	ida, idb := a[EscalationIDLabel], b[EscalationIDLabel]
	if ida != "" || idb != "" {
		return ida == idb
	}
	return maps.Equal(a, b)
}

func equalLabels(names []string, a, b map[string]string) bool {
	for _, n := range names {
		if a[n] == "" || a[n] != b[n] {
			return false
		}
	}
	return true
}
