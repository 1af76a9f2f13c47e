// Package tenants is ingest's reading of the tenants file (see the platform's package tenants):
// how each tenant's helpdesk webhook sources prove a delivery, the verify.Config of every
// tenant and source. The rest of the file, tenants, rate limits and credentials, is the
// platform's; ingest reads it through the same registry as every service.
package tenants

import (
	"context"
	"log/slog"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot/hsapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/vendorapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
	ptenants "github.com/ticketpulse/ticketpulse/services/platform/tenants"
)

// Rate limit defaults, for tenants and files that do not set one.
const (
	DefaultEventsPerSecond = ptenants.DefaultEventsPerSecond
	DefaultBurst           = ptenants.DefaultBurst
)

// Config is a loaded, validated tenants file with its webhook sources read.
type Config = ptenants.Config[Sources]

// Tenant is one helpdesk account; Sources holds its webhook sources.
type Tenant = ptenants.Tenant[Sources]

// RateLimit is a token bucket: EventsPerSecond refill, Burst capacity.
type RateLimit = ptenants.RateLimit

// Registry is the tenants file in force, reloaded on change (see Registry.Watch).
type Registry = ptenants.Registry[Sources]

// Open loads the tenants file at path with its webhook sources; see ptenants.Open.
func Open(ctx context.Context, path string, o ptenants.Options) (*Registry, error) {
	return ptenants.OpenWith(ctx, path, ParseSources, o)
}

// Sources are one tenant's webhook sources by name (one of verify.Sources). A tenant may have
// none and use only the events API.
type Sources map[string]*SourceConfig

// Count is the number of sources, for the log summary.
func (s Sources) Count() int { return len(s) }

// SourceConfig is one tenant's settings for one webhook source.
type SourceConfig struct {
	Tenant string
	verify.Config
	// Settings are what the source's adapter needs to know besides the payload (the survey
	// sources' ticket field, score question and scale); zero for the helpdesks.
	Settings adapter.Settings
	// Statuses maps a CRM's own status (a Salesforce Case Status, a HubSpot pipeline stage id)
	// to a canonical status word, over the adapter's defaults; nil for the helpdesks.
	Statuses map[string]string
	// HubSpotAPI is the private app access the HubSpot adapter looks conversation messages up
	// with; without a token (every other source, and HubSpot by default) nothing is looked up.
	HubSpotAPI hsapi.Access
	// SurveyAPI is the access the SurveyMonkey and Qualtrics adapters look a webhook's response
	// up with; without a token nothing is looked up.
	SurveyAPI vendorapi.Access
}

// Source returns a tenant's settings for a source; false when either is not configured.
func Source(c *Config, tenant, source string) (*SourceConfig, bool) {
	t, ok := c.Tenants[tenant]
	if !ok {
		return nil, false
	}
	s, ok := t.Sources[source]
	return s, ok
}

// LogValue describes the source without a single secret byte.
func (s *SourceConfig) LogValue() slog.Value {
	attrs := append([]slog.Attr{slog.String("tenant", s.Tenant)}, s.Config.LogValue().Group()...)
	// A survey's settings are no secret, and a wrong one is the first thing to look for when its
	// responses are skipped or refused.
	if st := s.Settings; st != (adapter.Settings{}) {
		attrs = append(attrs, slog.String("ticket_field", st.TicketField), slog.String("score_question", st.ScoreQuestion),
			slog.String("scale", st.Scale))
	}
	if s.HubSpotAPI.Configured() {
		attrs = append(attrs, slog.Bool("access_token", true), slog.String("api_url", s.HubSpotAPI.BaseURL))
	}
	if s.SurveyAPI.Configured() {
		attrs = append(attrs, slog.Bool("access_token", true), slog.String("api_url", s.SurveyAPI.BaseURL))
	}
	return slog.GroupValue(attrs...)
}

// Problem is one reason the file was refused: "<file>:<line>: <reason>".
type Problem = ptenants.Problem

// Problems is every reason the file was refused, in line order; Load's error when the file is
// readable but wrong.
type Problems = ptenants.Problems

// Load reads and validates the tenants file at path, webhook sources included. getenv resolves
// {env: NAME} references (nil means os.Getenv); relative {file: PATH} references are relative
// to the tenants file's directory. A file that is readable but wrong yields Problems.
func Load(path string, getenv func(string) string) (*Config, error) {
	return ptenants.Load(path, getenv, ParseSources)
}

// parse validates the file's content; a nil getenv is os.Getenv (see yamlconf.SecretRefs).
func parse(file, dir string, data []byte, getenv func(string) string) (*Config, error) {
	return ptenants.Parse(file, dir, data, getenv, ParseSources)
}
