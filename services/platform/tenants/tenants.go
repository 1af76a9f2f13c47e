// Package tenants is the registry every service reads (DESIGN.md §8): which tenants exist, their
// rate limits, the API keys and OpenID Connect providers that authenticate callers, and, for
// ingest, how each of their helpdesk webhook sources proves a delivery.
//
// The file holds no secret: each secret (and each key hash) is a reference, {env: NAME} or
// {file: PATH}, resolved at load time, so the file can be reviewed and committed while the
// values live in the deployment's secret store. A literal value is refused, not merely
// discouraged.
//
// Loading is strict, because a typo in a credential or webhook setting fails silently at 3 a.m.
// otherwise: an unknown key, a missing or unreadable secret, or a bad value is a problem, and
// Load reports every such problem at once, each as "<file>:<line>: <reason>". A problem never
// quotes a secret or a key hash.
//
// The webhook sources are read by ingest alone: it loads the file with its SourcesParser, and
// every other service accepts sources: (and defaults.tolerance) unread.
package tenants

import (
	"log/slog"
	"path/filepath"
	"slices"
	"sort"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// Rate limit defaults, for tenants and files that do not set one.
const (
	DefaultEventsPerSecond = 200
	DefaultBurst           = 1000
)

// DefaultRoleClaim is the ID token claim holding a person's roles when oidc.role_claim is unset.
const DefaultRoleClaim = "roles"

// Config is a loaded, validated tenants file. S is what the loading service made of the
// webhook sources (NoSources for every service but ingest).
type Config[S any] struct {
	// Tenants by id.
	Tenants map[string]*Tenant[S]
	// Operators are the keys that span every tenant (Tenant empty, scope operator).
	Operators []auth.Key
	// OperatorOIDC is how operators sign in as people; nil when they do not.
	OperatorOIDC *auth.OIDCConfig
}

// Tenant is one helpdesk account.
type Tenant[S any] struct {
	ID        string
	RateLimit RateLimit
	// APIKeys are the tenant's keys in file order, revoked ones included.
	APIKeys []auth.Key
	// OIDC is how the tenant's people sign in; nil when they do not.
	OIDC *auth.OIDCConfig
	// Sources is the loading service's reading of sources:; the zero S when it has none.
	Sources S
}

// RateLimit is a token bucket: EventsPerSecond refill, Burst capacity.
type RateLimit struct {
	EventsPerSecond float64
	Burst           int
}

// NoSources is the reading of sources: by a service that verifies no webhook: nothing.
type NoSources struct{}

// Tenant returns the tenant with the given id.
func (c *Config[S]) Tenant(id string) (*Tenant[S], bool) {
	t, ok := c.Tenants[id]
	return t, ok
}

// Keys returns every API key of the file: the operators', then each tenant's by tenant id.
func (c *Config[S]) Keys() []auth.Key {
	keys := slices.Clone(c.Operators)
	for _, id := range c.ids() {
		keys = append(keys, c.Tenants[id].APIKeys...)
	}
	return keys
}

// Providers returns every OpenID Connect setting: the operators', then each tenant's by id.
func (c *Config[S]) Providers() []auth.OIDCConfig {
	var out []auth.OIDCConfig
	if c.OperatorOIDC != nil {
		out = append(out, *c.OperatorOIDC)
	}
	for _, id := range c.ids() {
		if o := c.Tenants[id].OIDC; o != nil {
			out = append(out, *o)
		}
	}
	return out
}

func (c *Config[S]) ids() []string {
	ids := make([]string, 0, len(c.Tenants))
	for id := range c.Tenants {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Counter is implemented by a Sources type that can say how many sources it holds, for the
// log summary.
type Counter interface{ Count() int }

// LogValue summarises the file for the log: counts only, never a hash.
func (c *Config[S]) LogValue() slog.Value {
	keys, revoked, oidc := 0, 0, 0
	for _, k := range c.Keys() {
		keys++
		if k.Revoked {
			revoked++
		}
	}
	sources, counted := 0, false
	if c.OperatorOIDC != nil {
		oidc++
	}
	for _, t := range c.Tenants {
		if t.OIDC != nil {
			oidc++
		}
		if n, ok := any(t.Sources).(Counter); ok {
			sources += n.Count()
			counted = true
		}
	}
	attrs := []slog.Attr{slog.Int("tenants", len(c.Tenants))}
	if counted {
		attrs = append(attrs, slog.Int("sources", sources))
	}
	attrs = append(attrs, slog.Int("api_keys", keys), slog.Int("revoked_keys", revoked), slog.Int("oidc", oidc))
	return slog.GroupValue(attrs...)
}

// LogValue describes the tenant without its key hashes.
func (t *Tenant[S]) LogValue() slog.Value {
	names := make([]string, len(t.APIKeys))
	for i, k := range t.APIKeys {
		names[i] = k.Name
	}
	attrs := []slog.Attr{slog.String("id", t.ID), slog.Float64("events_per_second", t.RateLimit.EventsPerSecond),
		slog.Int("burst", t.RateLimit.Burst), slog.Any("api_keys", names)}
	if t.OIDC != nil {
		attrs = append(attrs, slog.String("oidc_issuer", t.OIDC.Issuer))
	}
	if n, ok := any(t.Sources).(Counter); ok {
		attrs = append(attrs, slog.Int("sources", n.Count()))
	}
	return slog.GroupValue(attrs...)
}

// Problem is one reason the file was refused: "<file>:<line>: <reason>".
type Problem = yamlconf.Problem

// Problems is every reason the file was refused, in line order; Load's error when the file is
// readable but wrong.
type Problems = yamlconf.Problems

// Load reads and validates the tenants file at path. getenv resolves {env: NAME} references
// (nil means os.Getenv); relative {file: PATH} references are relative to the tenants file's
// directory. sources reads the webhook sources; nil accepts them unread. A file that is
// readable but wrong yields Problems.
func Load[S any](path string, getenv func(string) string, sources SourcesParser[S]) (*Config[S], error) {
	return yamlconf.LoadFile(path, "tenants file", func(data []byte) (*Config[S], error) {
		return Parse(path, filepath.Dir(path), data, getenv, sources)
	})
}

// Parse validates the content of a tenants file named file (for messages), whose relative
// {file: PATH} references are in dir; the rest is as Load.
func Parse[S any](file, dir string, data []byte, getenv func(string) string, sources SourcesParser[S]) (*Config[S], error) {
	p := &Parser{Loader: yamlconf.Loader{File: file}, Refs: yamlconf.SecretRefs{Dir: dir, Getenv: getenv}}
	return yamlconf.Checked(load(p, data, sources), &p.Loader)
}
