package rulesfile

import (
	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// The calendars and SLA policies are read by package slapolicy, which the KPI service reads the
// same file with; what follows ties them into this loader.

// sla is the reader of the SLA part, sharing this loader's problems.
func (l *loader) sla() slapolicy.Reader { return slapolicy.Reader{L: &l.Loader} }

func (l *loader) calendars(n *yaml.Node, path string, refs *tenantRefs) {
	l.sla().Calendars(n, path, &refs.calendars)
}

func (l *loader) slaPolicies(n *yaml.Node, path string, refs *tenantRefs) []*Policy {
	return l.sla().Policies(n, path, &refs.calendars, func(f map[string]yamlconf.Pair, n *yaml.Node, path string) string {
		return l.escalationRef(f, n, path, refs)
	})
}

// escalationRef reads the escalation: every policy and rule must name.
func (l *loader) escalationRef(f map[string]yamlconf.Pair, n *yaml.Node, path string, refs *tenantRefs) string {
	return l.sla().EscalationRef(f, n, path, refs.escalationNames)
}

func (l *loader) match(n *yaml.Node, path string) Match { return l.sla().Match(n, path) }

// share and percent read shares as SLA policies do (at_risk).
func share(n *yaml.Node) (float64, bool)   { return slapolicy.Share(n) }
func percent(n *yaml.Node) (float64, bool) { return slapolicy.Percent(n) }
