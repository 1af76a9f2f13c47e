package rulesfile

import (
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// targetLabel is the shape of a notify routing label ("team-lead", "oncall@billing").
var targetLabel = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)

// Every duration in the file may be written in days, and none is below a minute: a shorter SLA
// target or timeout is far more likely a typo (15s for 15m) than a policy.
var (
	minuteOrMore = slapolicy.MinuteOrMore
	// lastAckTimeout also takes 0: the last level is never raised.
	lastAckTimeout = yamlconf.DurationRule{Days: true, Min: time.Minute, Zero: true}
	// historyHorizon also takes 0: every breach is raised, however old.
	historyHorizon = yamlconf.DurationRule{Days: true, Min: time.Minute, Zero: true}
)

func (l *loader) escalationPolicies(n *yaml.Node, path string, t *Tenant, refs *tenantRefs) {
	entries, _ := l.Pairs(n, path)
	for _, e := range entries {
		name := e.Key.Value
		valid := l.definedName(e.Key, path)
		ep := l.escalationPolicy(name, e.Val, yamlconf.Join(path, name))
		if valid {
			refs.escalationNames = append(refs.escalationNames, name)
			t.Escalations[name] = ep
		}
	}
}

func (l *loader) escalationPolicy(name string, n *yaml.Node, path string) *EscalationPolicy {
	ep := &EscalationPolicy{Name: name}
	f, ok := l.Fields(n, path, "levels", "repeat", "history_horizon")
	if !ok {
		return ep
	}
	if p, ok := f["levels"]; ok {
		ep.Levels = l.levels(p.Val, path+".levels")
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing levels: (whom to notify, in order)", path)
	}
	if p, ok := f["repeat"]; ok {
		ep.Repeat, _ = l.DurationWith(p.Val, path+".repeat", minuteOrMore)
	}
	if p, ok := f["history_horizon"]; ok {
		ep.HistoryHorizon = l.historyHorizon(p.Val, path+".history_horizon")
	}
	return ep
}

// historyHorizon reads a policy's history_horizon; nil when it has a problem, so the half-built
// policy keeps the flag's horizon. A negative one gets its own message: 0 is allowed here, so
// "not positive" would mislead.
func (l *loader) historyHorizon(n *yaml.Node, path string) *time.Duration {
	n = yamlconf.Resolve(n)
	if n.Kind == yaml.ScalarNode {
		if d, err := yamlconf.ParseDuration(n.Value); err == nil && d < 0 {
			l.Addf(n, "%s: %s is negative (write 0 to raise every breach, however old)", path, n.Value)
			return nil
		}
	}
	d, ok := l.DurationWith(n, path, historyHorizon)
	if !ok {
		return nil
	}
	return &d
}

func (l *loader) levels(n *yaml.Node, path string) []Level {
	items, ok := l.List(n, path, "levels")
	if ok && len(items) == 0 {
		l.Addf(yamlconf.Resolve(n), "%s: want at least one level", path)
	}
	out := make([]Level, 0, len(items))
	for i, item := range items {
		out = append(out, l.level(item, yamlconf.Index(path, i), i == len(items)-1))
	}
	return out
}

func (l *loader) level(n *yaml.Node, path string, last bool) Level {
	var lv Level
	f, ok := l.Fields(n, path, "targets", "ack_timeout")
	if !ok {
		return lv
	}
	if p, ok := f["targets"]; ok {
		lv.Targets, _ = l.UniqueItems(p.Val, path+".targets", "at least one target", l.targetLabel)
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing targets: (the labels notify routes on, e.g. [team-lead])", path)
	}
	switch p, ok := f["ack_timeout"]; {
	case ok && last:
		lv.AckTimeout, _ = l.DurationWith(p.Val, path+".ack_timeout", lastAckTimeout)
	case ok:
		lv.AckTimeout, _ = l.DurationWith(p.Val, path+".ack_timeout", minuteOrMore)
	case !last:
		l.Addf(yamlconf.Resolve(n), "%s: missing ack_timeout: (every level but the last needs one)", path)
	}
	return lv
}

func (l *loader) targetLabel(n *yaml.Node, path string) (string, bool) {
	s, ok := l.Str(n, path)
	if !ok {
		return "", false
	}
	if !targetLabel.MatchString(s) {
		l.Addf(n, "%s: %q is not a target label (letters, digits and _ . @ - only)", path, s)
		return "", false
	}
	return s, true
}
