package tenants

import (
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// The file is walked as a yaml.Node tree with package yamlconf rather than decoded into structs:
// only the tree knows the line of every value, and walking it lets one pass report every
// problem, not the first.

// sourceKeys is each source's vocabulary. A key that does not apply (tolerance for a source that
// sends no timestamp) is an unknown key, so a setting never silently does nothing.
var sourceKeys = map[string][]string{
	verify.Zendesk:   {"secrets", "tolerance"},
	verify.Chatwoot:  {"secrets", "tolerance", "allow_unsigned_with_token"},
	verify.Freshdesk: {"url_token", "basic_auth"},
	verify.HelpScout: {"secrets"},
	verify.Zammad:    {"secrets"},
	verify.Intercom:  {"secrets"},
	verify.Generic:   {"secrets", "tolerance"},
}

type loader struct {
	yamlconf.Loader
	dir    string
	getenv func(string) string
}

func (l *loader) load(data []byte) *Config {
	root := l.Decode(data, "a mapping with a tenants: key", "the tenants file")
	if root == nil {
		return nil
	}
	top, _ := l.Fields(root, "", "defaults", "tenants")

	tolerance := verify.DefaultTolerance
	rate := RateLimit{EventsPerSecond: DefaultEventsPerSecond, Burst: DefaultBurst}
	if p, ok := top["defaults"]; ok {
		d, _ := l.Fields(p.Val, "defaults", "tolerance", "rate_limit")
		if p, ok := d["tolerance"]; ok {
			if v, ok := l.Duration(p.Val, "defaults.tolerance"); ok {
				tolerance = v
			}
		}
		if p, ok := d["rate_limit"]; ok {
			rate = l.rateLimit(p.Val, "defaults.rate_limit", rate)
		}
	}

	cfg := &Config{Tenants: map[string]*Tenant{}}
	p, ok := top["tenants"]
	if !ok {
		l.Addf(root, "missing tenants: (the tenants and their webhook sources)")
		return cfg
	}
	entries, ok := l.Pairs(p.Val, "tenants")
	if ok && len(entries) == 0 {
		l.Addf(p.Key, "tenants: no tenant defined")
	}
	for _, e := range entries {
		id := e.Key.Value
		path := yamlconf.Join("tenants", id)
		valid := idtoken.ValidTenant(id)
		if !valid {
			l.Addf(e.Key, "tenants: tenant id %q %s", id, idtoken.TenantRule)
		}
		// An invalid tenant's settings are still checked, so one run shows every problem.
		t := l.tenant(id, e.Val, path, tolerance, rate)
		if valid {
			cfg.Tenants[id] = t
		}
	}
	return cfg
}

func (l *loader) rateLimit(n *yaml.Node, path string, def RateLimit) RateLimit {
	f, _ := l.Fields(n, path, "events_per_second", "burst")
	if p, ok := f["events_per_second"]; ok {
		if v, ok := l.PositiveNumber(p.Val, path+".events_per_second"); ok {
			def.EventsPerSecond = v
		}
	}
	if p, ok := f["burst"]; ok {
		if v, ok := l.PositiveInt(p.Val, path+".burst"); ok {
			def.Burst = v
		}
	}
	return def
}

func (l *loader) tenant(id string, n *yaml.Node, path string, tolerance time.Duration, rate RateLimit) *Tenant {
	t := &Tenant{ID: id, RateLimit: rate, Sources: map[string]*SourceConfig{}}
	f, ok := l.Fields(n, path, "rate_limit", "sources")
	if !ok {
		return t
	}
	if p, ok := f["rate_limit"]; ok {
		t.RateLimit = l.rateLimit(p.Val, path+".rate_limit", rate)
	}
	p, ok := f["sources"]
	if !ok {
		return t
	}
	sources, _ := l.Pairs(p.Val, path+".sources")
	for _, s := range sources {
		name := s.Key.Value
		if _, known := sourceKeys[name]; !known {
			l.Addf(s.Key, "%s.sources: unknown source %q (want one of %s)", path, name, strings.Join(verify.Sources, ", "))
			continue
		}
		t.Sources[name] = l.source(id, name, s, yamlconf.Join(path+".sources", name), tolerance)
	}
	return t
}

func (l *loader) source(tenant, name string, at yamlconf.Pair, path string, tolerance time.Duration) *SourceConfig {
	before := len(l.Problems)
	sc := &SourceConfig{Tenant: tenant, Config: verify.Config{Source: name}}
	f, ok := l.Fields(at.Val, path, sourceKeys[name]...)
	if !ok {
		return sc
	}
	if slices.Contains(sourceKeys[name], "tolerance") {
		sc.Tolerance = tolerance
	}
	if p, ok := f["tolerance"]; ok {
		if v, ok := l.Duration(p.Val, path+".tolerance"); ok {
			sc.Tolerance = v
		}
	}
	p, hasSecrets := f["secrets"]
	if hasSecrets {
		sc.Secrets = l.secretList(p, path+".secrets", name == verify.Generic)
	}
	p, hasUnsigned := f["allow_unsigned_with_token"]
	if hasUnsigned {
		if s, ok := l.secret(p.Val, path+".allow_unsigned_with_token"); ok {
			sc.URLToken = verify.NewSecret(s.Value)
		}
	}
	p, hasToken := f["url_token"]
	if hasToken {
		if s, ok := l.secret(p.Val, path+".url_token"); ok {
			sc.URLToken = verify.NewSecret(s.Value)
		}
	}
	p, hasBasic := f["basic_auth"]
	if hasBasic {
		sc.BasicAuth = l.basicAuth(p.Val, path+".basic_auth")
	}
	switch {
	case name == verify.Freshdesk && !hasToken && !hasBasic:
		l.Addf(at.Key, "%s: freshdesk cannot sign; set url_token:, basic_auth: or both", path)
	case name == verify.Chatwoot && !hasSecrets && !hasUnsigned:
		l.Addf(at.Key, "%s: set secrets: (or, for installs too old to sign, allow_unsigned_with_token:)", path)
	case name != verify.Freshdesk && name != verify.Chatwoot && !hasSecrets:
		l.Addf(at.Key, "%s: %s signs its deliveries; set secrets: (a list of {env: NAME} or {file: PATH})", path, name)
	}
	// verify has the last word on what it can work with; every rule above should make this moot.
	if len(l.Problems) == before {
		if err := sc.Check(); err != nil {
			l.Addf(at.Key, "%s: %v", path, err)
		}
	}
	return sc
}

func (l *loader) secretList(at yamlconf.Pair, path string, webhookSecrets bool) []verify.Secret {
	var out []verify.Secret
	l.SecretList(at, path, l.secretRefs(), func(item *yaml.Node, path string, s yamlconf.Secret) {
		if !webhookSecrets {
			out = append(out, verify.NewSecret(s.Value))
			return
		}
		k, err := verify.ParseWebhookSecret(string(s.Value))
		if err != nil {
			l.Addf(item, "%s: %s: %v", path, s.From, err)
			return
		}
		out = append(out, k)
	})
	return out
}

// secretRefs resolves the file's {env: NAME} and {file: PATH} references (see yamlconf.Secret),
// files relative to its directory.
func (l *loader) secretRefs() yamlconf.SecretRefs {
	return yamlconf.SecretRefs{Dir: l.dir, Getenv: l.getenv}
}

func (l *loader) secret(n *yaml.Node, path string) (yamlconf.Secret, bool) {
	return l.Secret(n, path, l.secretRefs())
}

func (l *loader) basicAuth(n *yaml.Node, path string) *verify.BasicAuth {
	f, ok := l.Fields(n, path, "user", "password")
	ba := &verify.BasicAuth{}
	if !ok {
		return ba
	}
	if p, ok := f["user"]; ok {
		if u, ok := l.Str(p.Val, path+".user"); ok {
			if strings.Contains(u, ":") {
				l.Addf(p.Val, "%s.user: must not contain a colon (HTTP Basic separates user and password with one)", path)
			}
			ba.User = u
		}
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing user:", path)
	}
	if p, ok := f["password"]; ok {
		if s, ok := l.secret(p.Val, path+".password"); ok {
			ba.Password = verify.NewSecret(s.Value)
		}
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing password: ({env: NAME} or {file: PATH})", path)
	}
	return ba
}
