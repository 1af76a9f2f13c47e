package rulesfile

import (
	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"

	// Calendars must not depend on the host's zoneinfo: a rules file valid on a laptop would
	// otherwise be refused in a container image without one.
	_ "time/tzdata"
)

// Problem is one reason the rules file was refused: "<file>:<line>: <path>: <reason>".
type Problem = yamlconf.Problem

// Problems is every reason the rules file was refused, in line order; the error of Load and
// Parse when the file is readable but wrong.
type Problems = yamlconf.Problems

// Load reads and validates the rules file at path. A file that is readable but wrong yields
// Problems, all of them at once.
func Load(path string) (*Config, error) {
	return yamlconf.LoadFile(path, "rules file", func(data []byte) (*Config, error) { return Parse(path, data) })
}

// Parse validates a rules file's content; file names it in problems and becomes Config.File.
func Parse(file string, data []byte) (*Config, error) {
	l := &loader{Loader: yamlconf.Loader{File: file}}
	return yamlconf.Checked(l.load(data), &l.Loader)
}

// The file is walked as a yaml.Node tree (see package yamlconf) so that one pass reports every
// problem with its line. A value with a problem is left at its zero value and walking goes on;
// the half-built Config is thrown away when there was any problem.
type loader struct {
	yamlconf.Loader
}

var namePattern = slapolicy.NamePattern

const nameRule = slapolicy.NameRule

// tenantRefs is what a tenant's policies and rules may refer to. Names are recorded even when
// their definition has problems, so a reference to a broken calendar is not also "unknown".
type tenantRefs struct {
	calendars       slapolicy.Calendars
	escalationNames []string
}

func (l *loader) load(data []byte) *Config {
	root := l.Decode(data, "a mapping with a tenants: key", "the rules file")
	if root == nil {
		return nil
	}
	top, _ := l.Fields(root, "", "tenants")
	cfg := &Config{File: l.File, Tenants: map[string]*Tenant{}}
	p, ok := top["tenants"]
	if !ok {
		l.Addf(root, "missing tenants: (the tenants and their rules)")
		return cfg
	}
	// No tenant is fine: the service then runs without rules.
	entries, _ := l.Pairs(p.Val, "tenants")
	defer func() {
		// Only a file without problems is kept, and only its tenants' parts are handed out.
		if len(l.Problems) > 0 {
			return
		}
		for _, e := range entries {
			if t, ok := cfg.Tenants[e.Key.Value]; ok {
				t.YAML = tenantYAML(e.Key, e.Val)
			}
		}
	}()
	for _, e := range entries {
		id := e.Key.Value
		valid := idtoken.ValidTenant(id)
		if !valid {
			l.Addf(e.Key, "tenants: tenant id %q %s", id, idtoken.TenantRule)
		}
		// An invalid tenant's rules are still checked, so one run shows every problem.
		t := l.tenant(id, e.Val, yamlconf.Join("tenants", id))
		if valid {
			cfg.Tenants[id] = t
		}
	}
	return cfg
}

func (l *loader) tenant(id string, n *yaml.Node, path string) *Tenant {
	t := &Tenant{ID: id, Escalations: map[string]*EscalationPolicy{}}
	f, _ := l.Fields(n, path, "calendars", "escalation_policies", "sla_policies", "quality_rules", "call_service_level")
	refs := &tenantRefs{}
	// call_service_level is kpi's (the service-level threshold of calls); it is checked here
	// too, so a file escalation accepts is one kpi accepts.
	if p, ok := f["call_service_level"]; ok {
		l.sla().CallServiceLevel(p.Val, path+".call_service_level")
	}
	// Definitions first, whatever their order in the file, so references can be checked.
	if p, ok := f["calendars"]; ok {
		l.calendars(p.Val, path+".calendars", refs)
	}
	if p, ok := f["escalation_policies"]; ok {
		l.escalationPolicies(p.Val, path+".escalation_policies", t, refs)
	}
	if p, ok := f["sla_policies"]; ok {
		t.Policies = l.slaPolicies(p.Val, path+".sla_policies", refs)
	}
	if p, ok := f["quality_rules"]; ok {
		t.Quality = l.qualityRules(p.Val, path+".quality_rules", refs)
	}
	return t
}

// definedName checks the name of a definition written as a mapping key.
func (l *loader) definedName(key *yaml.Node, path string) bool { return l.sla().DefinedName(key, path) }
