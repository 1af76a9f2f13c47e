package slapolicy

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"

	// Calendars must not depend on the host's zoneinfo: a rules file valid on a laptop would
	// otherwise be refused in a container image without one.
	_ "time/tzdata"
)

// Set is the SLA part of a rules file: every tenant's SLA policies, for a service that measures
// SLAs without raising escalations. The file is the escalation service's rules file; the
// escalation policies and quality rules in it are that service's to check, so a Set only checks
// that each SLA policy names an escalation policy the tenant defines.
type Set struct {
	// File is the path it was loaded from, for logs.
	File string
	// Tenants are the SLA policies per tenant, in file order.
	Tenants map[string][]*Policy
	// CallServiceLevel is each tenant's call_service_level: the answer time within which an
	// inbound call counts as answered in service level. A tenant not listed sets none (kpi
	// then uses its default, 20 s).
	CallServiceLevel map[string]time.Duration
}

// Load reads the SLA part of the rules file at path. A file that is readable but wrong yields
// yamlconf.Problems, all of them at once.
func Load(path string) (*Set, error) {
	return yamlconf.LoadFile(path, "rules file", func(data []byte) (*Set, error) { return Parse(path, data) })
}

// Parse reads the SLA part of a rules file's content; file names it in problems.
func Parse(file string, data []byte) (*Set, error) {
	l := &yamlconf.Loader{File: file}
	return yamlconf.Checked(readSet(Reader{L: l}, data), l)
}

func readSet(r Reader, data []byte) *Set {
	root := r.L.Decode(data, "a mapping with a tenants: key", "the rules file")
	if root == nil {
		return nil
	}
	top, _ := r.L.Fields(root, "", "tenants")
	s := &Set{File: r.L.File, Tenants: map[string][]*Policy{}, CallServiceLevel: map[string]time.Duration{}}
	p, ok := top["tenants"]
	if !ok {
		r.L.Addf(root, "missing tenants: (the tenants and their rules)")
		return s
	}
	entries, _ := r.L.Pairs(p.Val, "tenants")
	for _, e := range entries {
		id := e.Key.Value
		valid := idtoken.ValidTenant(id)
		if !valid {
			r.L.Addf(e.Key, "tenants: tenant id %q %s", id, idtoken.TenantRule)
		}
		policies, sl := r.tenant(e.Val, yamlconf.Join("tenants", id))
		if valid {
			s.Tenants[id] = policies
			if sl > 0 {
				s.CallServiceLevel[id] = sl
			}
		}
	}
	return s
}

func (r Reader) tenant(n *yaml.Node, path string) ([]*Policy, time.Duration) {
	f, _ := r.L.Fields(n, path, "calendars", "escalation_policies", "sla_policies", "quality_rules", "call_service_level")
	var sl time.Duration
	if p, ok := f["call_service_level"]; ok {
		sl = r.CallServiceLevel(p.Val, path+".call_service_level")
	}
	var cals Calendars
	if p, ok := f["calendars"]; ok {
		r.Calendars(p.Val, path+".calendars", &cals)
	}
	var escalations []string
	if p, ok := f["escalation_policies"]; ok {
		entries, _ := r.L.QuietPairs(p.Val, path+".escalation_policies")
		for _, e := range entries {
			escalations = append(escalations, e.Key.Value)
		}
	}
	p, ok := f["sla_policies"]
	if !ok {
		return nil, sl
	}
	return r.Policies(p.Val, path+".sla_policies", &cals, func(f map[string]yamlconf.Pair, n *yaml.Node, path string) string {
		return r.EscalationRef(f, n, path, escalations)
	}), sl
}

// MaxCallServiceLevel bounds call_service_level: a threshold beyond it measures no service level.
const MaxCallServiceLevel = time.Hour

// CallServiceLevel reads a tenant's call_service_level: a duration from 1s to an hour; 0 when it
// has a problem.
func (r Reader) CallServiceLevel(n *yaml.Node, path string) time.Duration {
	d, ok := r.L.DurationWith(n, path, yamlconf.DurationRule{Min: time.Second})
	if !ok {
		return 0
	}
	if d > MaxCallServiceLevel {
		r.L.Addf(n, "%s: %s is longer than %s", path, d, MaxCallServiceLevel)
		return 0
	}
	return d
}

// EscalationRef reads the escalation: every policy and rule must name, one of names.
func (r Reader) EscalationRef(f map[string]yamlconf.Pair, n *yaml.Node, path string, names []string) string {
	e, ok := f["escalation"]
	if !ok {
		r.L.Addf(yamlconf.Resolve(n), "%s: missing escalation: (the escalation policy to raise)", path)
		return ""
	}
	name, _ := r.Ref(e.Val, path+".escalation", "escalation policy", names)
	return name
}

// Policy returns the tenant's first SLA policy that matches the ticket; nil when none does or
// the set (or tenant) has none.
func (s *Set) Policy(tenant string, tk Ticket) *Policy {
	if s == nil {
		return nil
	}
	return First(s.Tenants[tenant], tk)
}
