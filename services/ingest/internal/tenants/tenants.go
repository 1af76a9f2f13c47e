// Package tenants loads the tenants file: which tenants exist, their rate limits, and how each of
// their webhook sources proves a delivery (the verify.Config of every tenant and source).
//
// The file holds no secret: each secret is a reference, {env: NAME} or {file: PATH}, resolved at
// load time, so the file can be reviewed and committed while the values live in the deployment's
// secret store. A literal value is refused, not merely discouraged.
//
// Loading is strict, because a typo in a webhook setting fails silently at 3 a.m. otherwise: an
// unknown key, a missing or unreadable secret, or a bad value stops the service, and Load reports
// every such problem at once, each as "<file>:<line>: <reason>".
package tenants

import (
	"log/slog"
	"path/filepath"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// Rate limit defaults, for tenants and files that do not set one.
const (
	DefaultEventsPerSecond = 200
	DefaultBurst           = 1000
)

// Config is a loaded, validated tenants file.
type Config struct {
	// Tenants by id.
	Tenants map[string]*Tenant
}

// Tenant is one helpdesk account.
type Tenant struct {
	ID        string
	RateLimit RateLimit
	// Sources by name (one of verify.Sources). A tenant may have none and use only the events API.
	Sources map[string]*SourceConfig
}

// RateLimit is a token bucket: EventsPerSecond refill, Burst capacity.
type RateLimit struct {
	EventsPerSecond float64
	Burst           int
}

// SourceConfig is one tenant's settings for one webhook source.
type SourceConfig struct {
	Tenant string
	verify.Config
}

// Tenant returns the tenant with the given id.
func (c *Config) Tenant(id string) (*Tenant, bool) {
	t, ok := c.Tenants[id]
	return t, ok
}

// Source returns a tenant's settings for a source; false when either is not configured.
func (c *Config) Source(tenant, source string) (*SourceConfig, bool) {
	t, ok := c.Tenants[tenant]
	if !ok {
		return nil, false
	}
	s, ok := t.Sources[source]
	return s, ok
}

// LogValue summarises the file for the startup log.
func (c *Config) LogValue() slog.Value {
	sources := 0
	for _, t := range c.Tenants {
		sources += len(t.Sources)
	}
	return slog.GroupValue(slog.Int("tenants", len(c.Tenants)), slog.Int("sources", sources))
}

// LogValue describes the source without a single secret byte.
func (s *SourceConfig) LogValue() slog.Value {
	return slog.GroupValue(append([]slog.Attr{slog.String("tenant", s.Tenant)}, s.Config.LogValue().Group()...)...)
}

// Problem is one reason the file was refused: "<file>:<line>: <reason>".
type Problem = yamlconf.Problem

// Problems is every reason the file was refused, in line order; Load's error when the file is
// readable but wrong.
type Problems = yamlconf.Problems

// Load reads and validates the tenants file at path. getenv resolves {env: NAME} references (nil
// means os.Getenv); relative {file: PATH} references are relative to the tenants file's
// directory. A file that is readable but wrong yields Problems.
func Load(path string, getenv func(string) string) (*Config, error) {
	return yamlconf.LoadFile(path, "tenants file", func(data []byte) (*Config, error) {
		return parse(path, filepath.Dir(path), data, getenv)
	})
}

// parse validates the file's content; a nil getenv is os.Getenv (see yamlconf.SecretRefs).
func parse(file, dir string, data []byte, getenv func(string) string) (*Config, error) {
	l := &loader{Loader: yamlconf.Loader{File: file}, dir: dir, getenv: getenv}
	return yamlconf.Checked(l.load(data), &l.Loader)
}
