package rulesfile

import (
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

var kindWords = []string{string(KindBadRating), string(KindReopens), string(KindKPI), string(KindKPIBaseline)}

// qualityKeys is each kind's vocabulary. A key of another kind (max_score on a kpi rule) is
// refused as not applying, so a setting never silently does nothing.
var qualityKeys = map[QualityKind][]string{
	KindBadRating:   {"name", "kind", "severity", "escalation", "match", "max_score"},
	KindReopens:     {"name", "kind", "severity", "escalation", "match", "min_reopens"},
	KindKPI:         {"name", "kind", "severity", "escalation", "scope", "metric", "window", "above", "below", "min_sample"},
	KindKPIBaseline: {"name", "kind", "severity", "escalation", "scope", "metric", "window", "drop", "min_sample"},
}

// allQualityKeys is every kind's keys, for rules whose kind is unknown.
var allQualityKeys = []string{"name", "kind", "severity", "escalation", "match", "max_score", "min_reopens",
	"scope", "metric", "window", "above", "below", "drop", "min_sample"}

var severities = map[string]ticketpulsev1.Severity{
	"info":     ticketpulsev1.Severity_SEVERITY_INFO,
	"warning":  ticketpulsev1.Severity_SEVERITY_WARNING,
	"critical": ticketpulsev1.Severity_SEVERITY_CRITICAL,
}

// Windows are the snapshot windows a KPI rule may judge.
var windows = []string{"1h", "24h", "7d", "30d"}

// reservedRuleNames are the names the SLA escalations carry; a quality rule by one of them
// would be indistinguishable from them downstream.
var reservedRuleNames = []string{RuleFirstResponse, RuleNextResponse, RuleResolution}

func (l *loader) qualityRules(n *yaml.Node, path string, refs *tenantRefs) []*QualityRule {
	items, _ := l.List(n, path, "quality rules")
	first := map[string]int{}
	out := make([]*QualityRule, 0, len(items))
	for i, item := range items {
		out = append(out, l.qualityRule(item, yamlconf.Index(path, i), refs, first))
	}
	return out
}

func (l *loader) qualityRule(n *yaml.Node, path string, refs *tenantRefs, names map[string]int) *QualityRule {
	r := &QualityRule{Severity: ticketpulsev1.Severity_SEVERITY_WARNING}
	ps, ok := l.Pairs(n, path)
	if !ok {
		return r
	}
	known := l.qualityKind(ps, n, path, r)
	f := l.qualityFields(ps, path, r.Kind, known)

	r.Name = l.NameField(f, n, path, namePattern, nameRule, names)
	if slices.Contains(reservedRuleNames, r.Name) {
		l.Addf(f["name"].Val, "%s.name: %q is reserved for the SLA rules", path, r.Name)
	}
	if e, ok := f["severity"]; ok {
		if w, ok := l.OneOf(e.Val, path+".severity", "severity", "info", "warning", "critical"); ok {
			r.Severity = severities[w]
		}
	}
	r.Escalation = l.escalationRef(f, n, path, refs)
	if e, ok := f["match"]; ok {
		r.Match = l.match(e.Val, path+".match")
	}
	switch r.Kind {
	case KindBadRating:
		l.badRating(f, n, path, r)
	case KindReopens:
		if e, ok := f["min_reopens"]; ok {
			r.MinReopens, _ = l.PositiveInt(e.Val, path+".min_reopens")
		} else {
			l.Addf(yamlconf.Resolve(n), "%s: missing min_reopens: (how many reopens make a ticket bad)", path)
		}
	case KindKPI, KindKPIBaseline:
		l.kpiRule(f, n, path, r)
	}
	return r
}

// qualityKind reads kind: first, since it decides which other keys apply; known is false when
// it is missing or unknown.
func (l *loader) qualityKind(ps []yamlconf.Pair, n *yaml.Node, path string, r *QualityRule) (known bool) {
	for _, p := range ps {
		if p.Key.Value != "kind" {
			continue
		}
		w, ok := l.OneOf(p.Val, path+".kind", "kind", kindWords...)
		r.Kind = QualityKind(w)
		return ok
	}
	l.Addf(yamlconf.Resolve(n), "%s: missing kind: (one of %s)", path, strings.Join(kindWords, ", "))
	return false
}

// qualityFields sorts a rule's keys into those of its kind, those of another kind, and unknown
// ones. When the kind is not known, any kind's key is taken, so the rest is still checked.
func (l *loader) qualityFields(ps []yamlconf.Pair, path string, kind QualityKind, known bool) map[string]yamlconf.Pair {
	allowed := allQualityKeys
	if known {
		allowed = qualityKeys[kind]
	}
	f := make(map[string]yamlconf.Pair, len(ps))
	for _, p := range ps {
		key := p.Key.Value
		switch {
		case slices.Contains(allowed, key):
			f[key] = p
		case slices.Contains(allQualityKeys, key):
			l.Addf(p.Key, "%s: %s does not apply to kind %s", path, key, kind)
		default:
			l.Addf(p.Key, "%s: unknown key %q (allowed: %s)", path, key, strings.Join(allowed, ", "))
		}
	}
	return f
}

func (l *loader) badRating(f map[string]yamlconf.Pair, n *yaml.Node, path string, r *QualityRule) {
	e, ok := f["max_score"]
	if !ok {
		l.Addf(yamlconf.Resolve(n), "%s: missing max_score: (ratings from 1 to max_score are bad)", path)
		return
	}
	v := yamlconf.Resolve(e.Val)
	var score int32
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&score) != nil || score < 1 || score > 4 {
		l.Addf(v, "%s.max_score: want a whole number from 1 to 4, not %s", path, yamlconf.Shown(v))
		return
	}
	r.MaxScore = score
}

func (l *loader) kpiRule(f map[string]yamlconf.Pair, n *yaml.Node, path string, r *QualityRule) {
	r.Scope, r.MinSample = "agent", 1
	if e, ok := f["scope"]; ok {
		r.Scope, _ = l.OneOf(e.Val, path+".scope", "scope", "agent", "team", "queue")
	}
	if e, ok := f["metric"]; ok {
		r.Metric, _ = l.OneOf(e.Val, path+".metric", "metric", Metrics...)
		// A queue has only call figures: a ticket metric on it would never have a sample.
		if r.Scope == "queue" && r.Metric != "" && !strings.HasPrefix(r.Metric, "call_") {
			l.Addf(yamlconf.Resolve(e.Val), "%s.metric: %s is a ticket metric, and a queue has only call figures (scope: queue takes a call_* metric)", path, r.Metric)
		}
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing metric: (one of %s)", path, strings.Join(Metrics, ", "))
	}
	if e, ok := f["window"]; ok {
		r.Window, _ = l.OneOf(e.Val, path+".window", "window", windows...)
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing window: (one of %s)", path, strings.Join(windows, ", "))
	}
	if e, ok := f["min_sample"]; ok {
		if v, ok := l.PositiveInt(e.Val, path+".min_sample"); ok {
			r.MinSample = int64(v)
		}
	}
	if r.Kind == KindKPIBaseline {
		l.drop(f, n, path, r)
		return
	}
	above, hasAbove := f["above"]
	below, hasBelow := f["below"]
	switch {
	case hasAbove && hasBelow:
		l.Addf(below.Key, "%s: set above: or below:, not both", path)
	case hasAbove:
		r.Above = l.threshold(above.Val, path+".above", r.Metric)
	case hasBelow:
		r.Below = l.threshold(below.Val, path+".below", r.Metric)
	default:
		l.Addf(yamlconf.Resolve(n), "%s: set above: or below: (the threshold)", path)
	}
}

func (l *loader) drop(f map[string]yamlconf.Pair, n *yaml.Node, path string, r *QualityRule) {
	e, ok := f["drop"]
	if !ok {
		l.Addf(yamlconf.Resolve(n), "%s: missing drop: (how much worse than the baseline counts, e.g. 20%%)", path)
		return
	}
	v := yamlconf.Resolve(e.Val)
	d, ok := share(v)
	if !ok || !(d > 0 && d < 1) {
		l.Addf(v, "%s.drop: want a share between 0 and 1 such as 0.2 or 20%%, not %s", path, yamlconf.Shown(v))
		return
	}
	r.Drop = d
}

// threshold reads a kpi rule's fixed threshold in the metric's unit. With the metric unknown
// (a problem already) there is nothing to check it against, and nil is returned.
func (l *loader) threshold(n *yaml.Node, path, metricName string) *float64 {
	m, ok := metrics[metricName]
	if !ok {
		return nil
	}
	n = yamlconf.Resolve(n)
	var v float64
	switch m.Unit {
	case UnitSeconds:
		v, ok = seconds(n)
		if !ok {
			l.Addf(n, "%s: want a positive duration such as 2h or a number of seconds, not %s", path, yamlconf.Shown(n))
			return nil
		}
	case UnitRate:
		v, ok = share(n)
		if !ok || v < 0 || v > 1 {
			l.Addf(n, "%s: want a rate from 0 to 1 such as 0.7 or 70%%, not %s", path, yamlconf.Shown(n))
			return nil
		}
	case UnitPercent:
		// "80%" means 80 here: the metric itself is a percentage.
		v, ok = yamlconf.AsNumber(n)
		if p, isPercent := percent(n); isPercent {
			v, ok = p*100, true
		}
		if !ok || v < 0 || v > 100 {
			l.Addf(n, "%s: want a percentage from 0 to 100, not %s", path, yamlconf.Shown(n))
			return nil
		}
	case UnitRating:
		v, ok = yamlconf.AsNumber(n)
		if !ok || v < 1 || v > 5 {
			l.Addf(n, "%s: want a mean rating from 1 to 5, not %s", path, yamlconf.Shown(n))
			return nil
		}
	}
	return &v
}

// seconds reads a positive duration threshold: a duration string ("2h", "3d") or a number of
// seconds.
func seconds(n *yaml.Node) (float64, bool) {
	if f, ok := yamlconf.AsNumber(n); ok {
		return f, f > 0 && f < math.MaxInt64/1e9
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return 0, false
	}
	d, err := yamlconf.ParseDuration(n.Value)
	if err != nil || d <= 0 {
		return 0, false
	}
	return d.Seconds(), true
}
