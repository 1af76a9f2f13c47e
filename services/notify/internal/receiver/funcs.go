package receiver

import (
	"fmt"
	"sort"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Funcs are the functions templates may call. Besides the string helpers:
//
//	severity X     worst severity word ("CRITICAL", "WARNING", "INFO") of a *Notification, a
//	               change, an escalation or a tpv1.Severity
//	resolved N     true when every change of the *Notification is RESOLVED
//	kind C         change kind word ("TRIGGERED", "RAISED", …) of a change or a tpv1.ChangeKind
//	headline C     "TRIGGERED sla-first-response · ticket T-77 · level 1 → team-lead"
//	subject X      "ticket T-77" of a change or an escalation
//	targets X      the targets label ("team-lead, duty-manager")
//	fact X NAME    one fact's value, a duration shown as Go prints it ("3600s" → "1h0m0s")
//	facts X        all facts as "target=1h0m0s elapsed=1h5m0s"
//	label X NAME   a label of a change or escalation; of a *Notification its group label, else the
//	               first change's
//	labels X       all labels (a map, so range visits them by key)
//	group N        the group label values, tenant and rule first
//	escalations N  how many distinct escalations the changes are about
//	plural W N     "1 escalation", "3 escalations" (so `N | plural "escalation"` reads well)
//	timestamp T    a protobuf timestamp as "2006-01-02 15:04:05 UTC" ("" when unset)
//	truncate N S   S cut to at most N characters, "…" marking a cut
var Funcs = template.FuncMap{
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"join":  strings.Join,

	"severity":    severityWord,
	"resolved":    allResolved,
	"kind":        kindWord,
	"headline":    headline,
	"subject":     subject,
	"targets":     targets,
	"fact":        fact,
	"facts":       factsLine,
	"label":       label,
	"labels":      labels,
	"group":       groupValues,
	"escalations": countEscalations,
	"plural":      plural,
	"timestamp":   timestampText,
	"truncate":    truncate,
}

// escalationOf returns the escalation x is or holds (nil when none).
func escalationOf(x any) *tpv1.Escalation {
	switch v := x.(type) {
	case *tpv1.EscalationChange:
		return v.GetEscalation()
	case *tpv1.Escalation:
		return v
	}
	return nil
}

func severityWord(x any) (string, error) {
	var s tpv1.Severity
	switch v := x.(type) {
	case tpv1.Severity:
		s = v
	case *Notification:
		s = worstSeverity(v)
	case *tpv1.EscalationChange, *tpv1.Escalation:
		s = escalationOf(v).GetSeverity()
	default:
		return "", fmt.Errorf("severity: unexpected %T", x)
	}
	return severityName(s), nil
}

func severityName(s tpv1.Severity) string {
	if s == tpv1.Severity_SEVERITY_UNSPECIFIED {
		return "UNKNOWN"
	}
	return strings.TrimPrefix(s.String(), "SEVERITY_")
}

func worstSeverity(n *Notification) tpv1.Severity {
	var worst tpv1.Severity
	if n == nil {
		return worst
	}
	for _, c := range n.Changes {
		if s := c.GetEscalation().GetSeverity(); s > worst {
			worst = s
		}
	}
	return worst
}

func allResolved(n *Notification) bool {
	if n == nil || len(n.Changes) == 0 {
		return false
	}
	for _, c := range n.Changes {
		if c.GetKind() != tpv1.ChangeKind_CHANGE_KIND_RESOLVED {
			return false
		}
	}
	return true
}

func kindWord(x any) (string, error) {
	var k tpv1.ChangeKind
	switch v := x.(type) {
	case tpv1.ChangeKind:
		k = v
	case *tpv1.EscalationChange:
		k = v.GetKind()
	default:
		return "", fmt.Errorf("kind: unexpected %T", x)
	}
	return kindName(k), nil
}

func kindName(k tpv1.ChangeKind) string {
	if k == tpv1.ChangeKind_CHANGE_KIND_UNSPECIFIED {
		return "CHANGED"
	}
	return strings.TrimPrefix(k.String(), "CHANGE_KIND_")
}

// headline is the one-line description of a change, without its summary.
func headline(c *tpv1.EscalationChange) string {
	e := c.GetEscalation()
	var b strings.Builder
	b.WriteString(kindName(c.GetKind()))
	if r := e.GetRule(); r != "" {
		b.WriteString(" " + r)
	}
	if s := subject(c); s != "" {
		b.WriteString(" · " + s)
	}
	if l := e.GetLevel(); l > 0 {
		fmt.Fprintf(&b, " · level %d", l)
	}
	if t := targets(c); t != "" {
		b.WriteString(" → " + t)
	}
	return b.String()
}

func subject(x any) string {
	e := escalationOf(x)
	if e == nil {
		return ""
	}
	if e.GetSubjectId() != "" {
		return strings.TrimSpace(e.GetSubjectKind() + " " + e.GetSubjectId())
	}
	for _, k := range []string{"ticket", "agent", "team"} {
		if v := e.GetLabels()[k]; v != "" {
			return k + " " + v
		}
	}
	return ""
}

func targets(x any) string {
	t := escalationOf(x).GetLabels()["targets"]
	if t == "" {
		return ""
	}
	parts := strings.Split(t, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ", ")
}

// factValue shows a duration fact ("3600s", "90m") the way Go prints durations ("1h0m0s").
func factValue(v string) string {
	if !strings.ContainsFunc(v, unicode.IsLetter) {
		return v
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d.String()
	}
	return v
}

func fact(x any, name string) string {
	for _, f := range escalationOf(x).GetFacts() {
		if f.GetName() == name {
			return factValue(f.GetValue())
		}
	}
	return ""
}

func factsLine(x any) string {
	fs := escalationOf(x).GetFacts()
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, f.GetName()+"="+factValue(f.GetValue()))
	}
	return strings.Join(parts, " ")
}

func label(x any, name string) string {
	if n, ok := x.(*Notification); ok {
		if n == nil {
			return ""
		}
		if v, ok := n.GroupLabels[name]; ok {
			return v
		}
		if len(n.Changes) > 0 {
			return n.Changes[0].GetEscalation().GetLabels()[name]
		}
		return ""
	}
	return escalationOf(x).GetLabels()[name]
}

func labels(x any) map[string]string {
	if n, ok := x.(*Notification); ok {
		if n == nil {
			return nil
		}
		return n.GroupLabels
	}
	return escalationOf(x).GetLabels()
}

// groupValues are the group label values: tenant, rule, then the other labels by name.
func groupValues(n *Notification) []string {
	if n == nil {
		return nil
	}
	keys := make([]string, 0, len(n.GroupLabels))
	for k := range n.GroupLabels {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		switch k {
		case "tenant":
			return 0
		case "rule":
			return 1
		}
		return 2
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	var vals []string
	for _, k := range keys {
		if v := n.GroupLabels[k]; v != "" {
			vals = append(vals, v)
		}
	}
	return vals
}

func countEscalations(n *Notification) int {
	if n == nil {
		return 0
	}
	seen := make(map[string]bool, len(n.Changes))
	count := 0
	for _, c := range n.Changes {
		e := c.GetEscalation()
		if e.GetId() == "" {
			count++
			continue
		}
		key := e.GetTenant() + "\x00" + e.GetId()
		if !seen[key] {
			seen[key] = true
			count++
		}
	}
	return count
}

func plural(word string, n int) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func timestampText(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format("2006-01-02 15:04:05 UTC")
}

// truncate cuts s to at most n runes, the last being "…" when it was cut.
func truncate(n int, s string) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
