package tenants

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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

// maxSecretFile bounds a secret file's size.
const maxSecretFile = 64 << 10

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

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
			sc.URLToken = verify.NewSecret(s.raw)
		}
	}
	p, hasToken := f["url_token"]
	if hasToken {
		if s, ok := l.secret(p.Val, path+".url_token"); ok {
			sc.URLToken = verify.NewSecret(s.raw)
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
	n := yamlconf.Resolve(at.Val)
	if yamlconf.IsNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		l.Addf(at.Key, "%s: needs at least one secret", path)
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.Addf(n, "%s: want a list of {env: NAME} or {file: PATH}, not %s", path, yamlconf.Describe(n))
		return nil
	}
	out := make([]verify.Secret, 0, len(n.Content))
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		s, ok := l.secret(item, ipath)
		if !ok {
			continue
		}
		if webhookSecrets {
			k, err := verify.ParseWebhookSecret(string(s.raw))
			if err != nil {
				l.Addf(item, "%s: %s: %v", ipath, s.from, err)
				continue
			}
			out = append(out, k)
			continue
		}
		out = append(out, verify.NewSecret(s.raw))
	}
	return out
}

// resolved is a secret read from its reference, with where it came from for messages.
type resolved struct {
	raw  []byte
	from string
}

// secret resolves {env: NAME} or {file: PATH}. It never quotes what it reads, nor a scalar
// written in its place, since that scalar is most likely a pasted secret.
func (l *loader) secret(n *yaml.Node, path string) (resolved, bool) {
	n = yamlconf.Resolve(n)
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && !yamlconf.IsNull(n) {
			l.Addf(n, "%s: secrets are never written in this file; use {env: NAME} or {file: PATH}", path)
		} else {
			l.Addf(n, "%s: want {env: NAME} or {file: PATH}, not %s", path, yamlconf.Describe(n))
		}
		return resolved{}, false
	}
	ps, _ := l.QuietPairs(n, path)
	var env, file *yamlconf.Pair
	for i, p := range ps {
		switch p.Key.Value {
		case "env":
			env = &ps[i]
		case "file":
			file = &ps[i]
		case "value":
			l.Addf(p.Key, "%s: secrets are never written in this file; use {env: NAME} or {file: PATH}", path)
		default:
			l.Addf(p.Key, "%s: unknown key (allowed: env, file)", path)
		}
	}
	switch {
	case env != nil && file != nil:
		l.Addf(file.Key, "%s: set env: or file:, not both", path)
	case env != nil:
		return l.envSecret(env.Val, path+".env")
	case file != nil:
		return l.fileSecret(file.Val, path+".file")
	case len(ps) == 0:
		l.Addf(n, "%s: want {env: NAME} or {file: PATH}", path)
	}
	return resolved{}, false
}

func (l *loader) envSecret(n *yaml.Node, path string) (resolved, bool) {
	name, ok := l.Str(n, path)
	if !ok {
		return resolved{}, false
	}
	if !envName.MatchString(name) {
		l.Addf(n, "%s: %q is not an environment variable name", path, name)
		return resolved{}, false
	}
	v := l.getenv(name)
	if v == "" {
		l.Addf(n, "%s: environment variable %s is unset or empty", path, name)
		return resolved{}, false
	}
	return resolved{raw: []byte(v), from: "environment variable " + name}, true
}

func (l *loader) fileSecret(n *yaml.Node, path string) (resolved, bool) {
	name, ok := l.Str(n, path)
	if !ok {
		return resolved{}, false
	}
	full := name
	if !filepath.IsAbs(full) {
		full = filepath.Join(l.dir, full)
	}
	// A secret is short; a device, a pipe or a huge file is the wrong path, and reading it
	// could hang the start.
	if fi, err := os.Stat(full); err == nil && (!fi.Mode().IsRegular() || fi.Size() > maxSecretFile) {
		l.Addf(n, "%s: %s is not a regular file of at most %d bytes", path, full, maxSecretFile)
		return resolved{}, false
	}
	b, err := os.ReadFile(full)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.Addf(n, "%s: reading secret file %s: %v", path, full, err)
		return resolved{}, false
	}
	// Editors and `echo` end files with a newline that is not part of the secret.
	if t, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b = bytes.TrimSuffix(t, []byte("\r"))
	}
	if len(b) == 0 {
		l.Addf(n, "%s: secret file %s is empty", path, full)
		return resolved{}, false
	}
	return resolved{raw: b, from: "file " + full}, true
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
			ba.Password = verify.NewSecret(s.raw)
		}
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing password: ({env: NAME} or {file: PATH})", path)
	}
	return ba
}
