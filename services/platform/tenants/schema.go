package tenants

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// The file is walked as a yaml.Node tree with package yamlconf rather than decoded into structs:
// only the tree knows the line of every value, and walking it lets one pass report every
// problem, not the first.

// Parser walks one tenants file: the problems found so far, and how its secret references
// resolve. A SourcesParser reports on it.
type Parser struct {
	yamlconf.Loader
	// Refs resolves the file's {env: NAME} and {file: PATH} references.
	Refs yamlconf.SecretRefs
}

// SourcesParser reads the helpdesk webhook settings, the part of the file only ingest uses:
// defaults.tolerance and every tenant's sources:. It is called once per load with the value of
// defaults.tolerance (nil when the file sets none) and returns the reader of one tenant's
// sources: value (nil when the tenant has none; path is "tenants.<id>.sources"). Both report
// problems on p and, like every problem, never quote a secret.
type SourcesParser[S any] func(p *Parser, tolerance *yaml.Node) func(tenant string, sources *yaml.Node, path string) S

// keyName is what an API key's name may be: it appears in principal ids ("api-key:acme/ci-2026")
// and log lines, so no separators and nothing to escape.
var keyName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

const keyNameRule = "must match [a-z0-9][a-z0-9._-]{0,62}"

// hashHint says what a hash: reference must hold.
const hashHint = "{env: NAME} or {file: PATH} holding the key's sha256:... hash"

// seenHash is where a key hash was first listed, to refuse the same key twice anywhere in the file.
type seenHash struct {
	path string
	line int
}

type walk[S any] struct {
	*Parser
	hashes map[auth.KeyHash]seenHash
	// providers are the identity providers read so far, with where their issuer is.
	providers []provider
}

type provider struct {
	cfg  *auth.OIDCConfig
	path string
	line int
}

func load[S any](p *Parser, data []byte, sources SourcesParser[S]) *Config[S] {
	w := &walk[S]{Parser: p, hashes: map[auth.KeyHash]seenHash{}}
	root := p.Decode(data, "a mapping with a tenants: key", "the tenants file")
	if root == nil {
		return nil
	}
	top, _ := p.Fields(root, "", "defaults", "operators", "tenants")

	rate := RateLimit{EventsPerSecond: DefaultEventsPerSecond, Burst: DefaultBurst}
	var tolerance *yaml.Node
	if e, ok := top["defaults"]; ok {
		d, _ := p.Fields(e.Val, "defaults", "tolerance", "rate_limit")
		if e, ok := d["tolerance"]; ok {
			tolerance = e.Val
		}
		if e, ok := d["rate_limit"]; ok {
			rate = w.rateLimit(e.Val, "defaults.rate_limit", rate)
		}
	}
	var readSources func(tenant string, n *yaml.Node, path string) S
	if sources != nil {
		readSources = sources(p, tolerance)
	}

	cfg := &Config[S]{Tenants: map[string]*Tenant[S]{}}
	if e, ok := top["operators"]; ok {
		cfg.Operators, cfg.OperatorOIDC = w.operators(e.Val)
	}
	e, ok := top["tenants"]
	if !ok {
		p.Addf(root, "missing tenants: (the tenants and their webhook sources)")
		return cfg
	}
	entries, ok := p.Pairs(e.Val, "tenants")
	if ok && len(entries) == 0 {
		p.Addf(e.Key, "tenants: no tenant defined")
	}
	for _, e := range entries {
		id := e.Key.Value
		valid := idtoken.ValidTenant(id)
		if !valid {
			p.Addf(e.Key, "tenants: tenant id %q %s", id, idtoken.TenantRule)
		}
		// An invalid tenant's settings are still checked, so one run shows every problem.
		t := w.tenant(id, e.Val, yamlconf.Join("tenants", id), rate, readSources)
		if valid {
			cfg.Tenants[id] = t
		}
	}
	w.distinctProviders()
	return cfg
}

// distinctProviders refuses two identity providers a token could match both of: with the same
// issuer and audience, only a tenant_claim on each tells whose person signed in, and an
// operators' provider must be told apart by issuer or audience alone.
func (w *walk[S]) distinctProviders() {
	for i, p := range w.providers {
		for _, q := range w.providers[:i] {
			if p.cfg.Issuer != q.cfg.Issuer || p.cfg.Audience != q.cfg.Audience {
				continue
			}
			switch {
			case p.cfg.Tenant == "" || q.cfg.Tenant == "":
				w.AddLine(p.line, fmt.Sprintf("%s: %s has the same issuer and audience (line %d); the operators' provider needs an audience of its own", p.path, q.path, q.line))
			case p.cfg.TenantClaim == "" || q.cfg.TenantClaim == "":
				w.AddLine(p.line, fmt.Sprintf("%s: %s has the same issuer and audience (line %d); set tenant_claim: on both, so a token names its tenant", p.path, q.path, q.line))
			default:
				continue
			}
			break
		}
	}
}

func (w *walk[S]) rateLimit(n *yaml.Node, path string, def RateLimit) RateLimit {
	f, _ := w.Fields(n, path, "events_per_second", "burst")
	if e, ok := f["events_per_second"]; ok {
		if v, ok := w.PositiveNumber(e.Val, path+".events_per_second"); ok {
			def.EventsPerSecond = v
		}
	}
	if e, ok := f["burst"]; ok {
		if v, ok := w.PositiveInt(e.Val, path+".burst"); ok {
			def.Burst = v
		}
	}
	return def
}

func (w *walk[S]) tenant(id string, n *yaml.Node, path string, rate RateLimit, readSources func(string, *yaml.Node, string) S) *Tenant[S] {
	t := &Tenant[S]{ID: id, RateLimit: rate}
	f, ok := w.Fields(n, path, "rate_limit", "api_keys", "oidc", "sources")
	if e, ok := f["rate_limit"]; ok {
		t.RateLimit = w.rateLimit(e.Val, path+".rate_limit", rate)
	}
	if e, ok := f["api_keys"]; ok {
		t.APIKeys = w.apiKeys(e.Val, path+".api_keys", id)
	}
	if e, ok := f["oidc"]; ok {
		t.OIDC = w.oidc(e.Val, path+".oidc", id)
	}
	if readSources != nil && ok {
		var sources *yaml.Node
		if e, ok := f["sources"]; ok {
			sources = e.Val
		}
		t.Sources = readSources(id, sources, path+".sources")
	}
	return t
}

func (w *walk[S]) operators(n *yaml.Node) ([]auth.Key, *auth.OIDCConfig) {
	f, _ := w.Fields(n, "operators", "api_keys", "oidc")
	var keys []auth.Key
	var oidc *auth.OIDCConfig
	if e, ok := f["api_keys"]; ok {
		keys = w.apiKeys(e.Val, "operators.api_keys", "")
	}
	if e, ok := f["oidc"]; ok {
		oidc = w.oidc(e.Val, "operators.oidc", "")
	}
	return keys, oidc
}

// apiKeys reads a list of keys of tenant, or of the operators when tenant is "".
func (w *walk[S]) apiKeys(n *yaml.Node, path, tenant string) []auth.Key {
	items, _ := w.List(n, path, "api keys ({name, scopes, hash})")
	fields := []string{"name", "scopes", "hash", "revoked"}
	if tenant == "" {
		fields = []string{"name", "hash", "revoked"} // operator is the only scope, implied
	}
	var keys []auth.Key
	names := map[string]int{}
	for i, item := range items {
		ipath := yamlconf.Index(path, i)
		before := len(w.Problems)
		f, ok := w.Fields(item, ipath, fields...)
		if !ok {
			continue
		}
		k := auth.Key{Tenant: tenant, Name: w.NameField(f, item, ipath, keyName, keyNameRule, names)}
		if tenant == "" {
			k.Scopes = []auth.Scope{auth.Operator}
		} else if e, ok := f["scopes"]; ok {
			k.Scopes = w.scopes(e.Val, ipath+".scopes", false)
		} else {
			w.Addf(yamlconf.Resolve(item), "%s: missing scopes: (any of %s)", ipath, scopeWords())
		}
		if e, ok := f["hash"]; ok {
			k.Hash, _ = w.hash(e.Val, ipath+".hash")
		} else {
			w.Addf(yamlconf.Resolve(item), "%s: missing hash: (%s)", ipath, hashHint)
		}
		if e, ok := f["revoked"]; ok {
			k.Revoked = w.boolean(e.Val, ipath+".revoked")
		}
		if len(w.Problems) == before {
			keys = append(keys, k)
		}
	}
	return keys
}

// hash reads a key hash from its reference; the same hash anywhere else in the file is refused,
// since one key would then stand for two callers.
func (w *walk[S]) hash(n *yaml.Node, path string) (auth.KeyHash, bool) {
	s, ok := w.Secret(n, path, w.Refs)
	if !ok {
		return auth.KeyHash{}, false
	}
	h, err := auth.ParseKeyHash(string(s.Value))
	if err != nil {
		w.Addf(n, "%s: %s: %v", path, s.From, err)
		return auth.KeyHash{}, false
	}
	if first, dup := w.hashes[h]; dup {
		w.Addf(n, "%s: %s holds the same hash as %s (line %d); every key must be its own", path, s.From, first.path, first.line)
		return auth.KeyHash{}, false
	}
	w.hashes[h] = seenHash{path: path, line: yamlconf.Resolve(n).Line}
	return h, true
}

// scopes reads a non-empty list of scopes. A tenant's may not hold operator, which spans every
// tenant; the operators' (their roles) may hold nothing else.
func (w *walk[S]) scopes(n *yaml.Node, path string, operators bool) []auth.Scope {
	words, _ := w.UniqueItems(n, path, "at least one scope", func(item *yaml.Node, path string) (string, bool) {
		s, ok := w.Str(item, path)
		if !ok {
			return "", false
		}
		sc, err := auth.ParseScope(s)
		switch {
		case operators && sc != auth.Operator:
			w.Addf(item, "%s: the operators' roles give operator and nothing else, not %q", path, s)
			return "", false
		case operators:
		case err != nil:
			w.Addf(item, "%s: unknown scope %q (want one of %s)", path, s, scopeWords())
			return "", false
		case sc == auth.Operator:
			w.Addf(item, "%s: operator spans every tenant; give it to a key under operators: instead", path)
			return "", false
		}
		return s, true
	})
	out := make([]auth.Scope, len(words))
	for i, s := range words {
		out[i] = auth.Scope(s)
	}
	return out
}

func scopeWords() string {
	words := make([]string, len(auth.TenantScopes))
	for i, s := range auth.TenantScopes {
		words[i] = string(s)
	}
	return strings.Join(words, ", ")
}

func (w *walk[S]) boolean(n *yaml.Node, path string) bool {
	n = yamlconf.Resolve(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		w.Addf(n, "%s: want true or false, not %s", path, yamlconf.Shown(n))
		return false
	}
	return b
}

func (w *walk[S]) oidc(n *yaml.Node, path, tenant string) *auth.OIDCConfig {
	before := len(w.Problems)
	fields := []string{"issuer", "audience", "tenant_claim", "role_claim", "roles"}
	if tenant == "" {
		fields = []string{"issuer", "audience", "role_claim", "roles"} // operators have no tenant
	}
	f, ok := w.Fields(n, path, fields...)
	if !ok {
		return nil
	}
	if yamlconf.IsNull(yamlconf.Resolve(n)) {
		w.Addf(yamlconf.Resolve(n), "%s: want a mapping with issuer:, audience: and roles:, not nothing", path)
		return nil
	}
	o := &auth.OIDCConfig{Tenant: tenant, RoleClaim: DefaultRoleClaim}
	line := yamlconf.Resolve(n).Line
	if e, ok := f["issuer"]; ok {
		o.Issuer, line = w.issuer(e.Val, path+".issuer"), yamlconf.Resolve(e.Val).Line
	} else {
		w.Addf(yamlconf.Resolve(n), "%s: missing issuer: (the provider's https:// issuer URL)", path)
	}
	if e, ok := f["audience"]; ok {
		o.Audience, _ = w.Str(e.Val, path+".audience")
	} else {
		w.Addf(yamlconf.Resolve(n), "%s: missing audience: (the client id Ticketpulse is registered with)", path)
	}
	if e, ok := f["tenant_claim"]; ok {
		o.TenantClaim, _ = w.Str(e.Val, path+".tenant_claim")
	}
	if e, ok := f["role_claim"]; ok {
		o.RoleClaim, _ = w.Str(e.Val, path+".role_claim")
	}
	if e, ok := f["roles"]; ok {
		o.Roles = w.roles(e, path+".roles", tenant == "")
	} else {
		w.Addf(yamlconf.Resolve(n), "%s: missing roles: (each role and the scopes it gives)", path)
	}
	if len(w.Problems) > before {
		return nil
	}
	w.providers = append(w.providers, provider{cfg: o, path: path, line: line})
	return o
}

// issuer reads the provider's issuer URL. It must be https, since the keys that sign ID tokens
// are fetched from it; plain http is allowed on the loopback host only, for a local provider.
func (w *walk[S]) issuer(n *yaml.Node, path string) string {
	s, ok := w.Str(n, path)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "https" && u.Scheme != "http"):
		w.Addf(n, "%s: %q is not an https:// URL", path, s)
	case u.Scheme == "http" && !loopback(u.Hostname()):
		w.Addf(n, "%s: %q: an issuer is https:// (http:// only on localhost or 127.0.0.1)", path, s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		w.Addf(n, "%s: an issuer URL has no user, query or fragment", path)
	default:
		return s
	}
	return ""
}

func loopback(host string) bool { return host == "localhost" || host == "127.0.0.1" || host == "::1" }

// roles reads role: [scopes] pairs. A person's roles the file does not map give nothing, so
// an unmapped role needs no entry.
func (w *walk[S]) roles(at yamlconf.Pair, path string, operators bool) map[string][]auth.Scope {
	entries, ok := w.Pairs(at.Val, path)
	if ok && len(entries) == 0 {
		w.Addf(at.Key, "%s: no role defined; map each role of the role claim to its scopes", path)
	}
	roles := make(map[string][]auth.Scope, len(entries))
	for _, e := range entries {
		if e.Key.Value == "" {
			w.Addf(e.Key, "%s: a role is a non-empty string", path)
			continue
		}
		roles[e.Key.Value] = w.scopes(e.Val, yamlconf.Join(path, e.Key.Value), operators)
	}
	return roles
}
