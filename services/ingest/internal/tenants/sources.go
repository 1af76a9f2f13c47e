package tenants

import (
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot/hsapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/survey"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/vendorapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
	ptenants "github.com/ticketpulse/ticketpulse/services/platform/tenants"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// The file is walked as a yaml.Node tree with package yamlconf rather than decoded into structs:
// only the tree knows the line of every value, and walking it lets one pass report every
// problem, not the first.

// sourceKeys is each source's vocabulary. A key that does not apply (tolerance for a source that
// sends no timestamp) is an unknown key, so a setting never silently does nothing.
var sourceKeys = map[string][]string{
	verify.Zendesk:    {"secrets", "tolerance"},
	verify.Chatwoot:   {"secrets", "tolerance", "allow_unsigned_with_token"},
	verify.Freshdesk:  {"url_token", "basic_auth"},
	verify.HelpScout:  {"secrets"},
	verify.Zammad:     {"secrets"},
	verify.Intercom:   {"secrets"},
	verify.Salesforce: {"url_token", "secrets", "tolerance", "organization_id", "statuses"},
	verify.HubSpot:    {"secrets", "tolerance", "target_url", "portal_ids", "statuses", "access_token", "api_url"},
	verify.Generic:    {"secrets", "tolerance"},
	// The survey sources also say where a response keeps its ticket and its score; with
	// access_token: (and api_url:, Qualtrics' datacenter) a webhook's response is looked up at
	// the vendor's API.
	verify.Typeform:     append([]string{"secrets"}, surveyKeys...),
	verify.SurveyMonkey: append(append([]string{"api_key", "secrets"}, surveyKeys...), "access_token", "api_url"),
	verify.Qualtrics:    append(append([]string{"url_token"}, surveyKeys...), "access_token", "api_url"),
	// Five9's ticket_field names the connector parameter holding the linked ticket; the
	// Genesys Cloud and RingCentral notifications carry no ticket (docs/contactcentres.md).
	verify.Five9:       {"url_token", "ticket_field"},
	verify.Genesys:     {"secrets"},
	verify.RingCentral: {"secrets"},
}

// surveyKeys are the mapping settings of a survey source (adapter.Settings).
var surveyKeys = []string{"ticket_field", "agent_field", "score_question", "comment_question", "scale"}

// StatusWords are the canonical statuses a CRM's statuses: mapping may name.
var StatusWords = []string{"new", "open", "pending", "on_hold", "solved", "closed"}

// sources reads the webhook part of one load of the file.
type sources struct {
	*ptenants.Parser
	tolerance time.Duration
}

// ParseSources reads defaults.tolerance and each tenant's sources: (see
// ptenants.SourcesParser).
func ParseSources(p *ptenants.Parser, tolerance *yaml.Node) func(tenant string, n *yaml.Node, path string) Sources {
	l := &sources{Parser: p, tolerance: verify.DefaultTolerance}
	if tolerance != nil {
		if v, ok := l.Duration(tolerance, "defaults.tolerance"); ok {
			l.tolerance = v
		}
	}
	return l.tenant
}

var _ ptenants.SourcesParser[Sources] = ParseSources

func (l *sources) tenant(id string, n *yaml.Node, path string) Sources {
	out := Sources{}
	if n == nil {
		return out
	}
	entries, _ := l.Pairs(n, path)
	for _, s := range entries {
		name := s.Key.Value
		if _, known := sourceKeys[name]; !known {
			l.Addf(s.Key, "%s: unknown source %q (want one of %s)", path, name, strings.Join(verify.Sources, ", "))
			continue
		}
		out[name] = l.source(id, name, s, yamlconf.Join(path, name), l.tolerance)
	}
	return out
}

func (l *sources) source(tenant, name string, at yamlconf.Pair, path string, tolerance time.Duration) *SourceConfig {
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
	p, hasAPIKey := f["api_key"]
	if hasAPIKey {
		if k, ok := l.Str(p.Val, path+".api_key"); ok {
			sc.APIKey = k
		}
	}
	if slices.Contains(sourceKeys[name], "score_question") {
		sc.Settings = l.surveySettings(at, f, path)
	} else if p, ok := f["ticket_field"]; ok {
		if v, ok := l.Str(p.Val, path+".ticket_field"); ok && strings.TrimSpace(v) == "" {
			l.Addf(p.Val, "%s.ticket_field: must not be empty", path)
		} else if ok {
			sc.Settings.TicketField = v
		}
	}
	l.crm(f, sc, at, path)
	switch {
	case name == verify.Salesforce && !hasToken && !hasSecrets:
		l.Addf(at.Key, "%s: set url_token: (Outbound Messages), secrets: (Flow callouts) or both", path)
	case name == verify.Salesforce || name == verify.HubSpot && hasSecrets:
		// Usable as far as credentials go; crm above and sc.Check below judge the rest.
	case name == verify.Freshdesk && !hasToken && !hasBasic:
		l.Addf(at.Key, "%s: freshdesk cannot sign; set url_token:, basic_auth: or both", path)
	case name == verify.Qualtrics && !hasToken:
		l.Addf(at.Key, "%s: qualtrics cannot sign; set url_token: (the ?token= of the subscription's publication URL)", path)
	case name == verify.SurveyMonkey && !hasAPIKey:
		l.Addf(at.Key, "%s: surveymonkey signs with the app's API key and API secret; set api_key: (the client id, not a secret) and secrets: (the API secret)", path)
	case name == verify.Five9 && !hasToken:
		l.Addf(at.Key, "%s: five9 cannot sign; set url_token: (the ?token= of the connector's URL)", path)
	case name == verify.Genesys && !hasSecrets:
		l.Addf(at.Key, "%s: set secrets: (the shared secret the Genesys Cloud webhook sends in %s)", path, verify.GenesysSecretHeader)
	case name == verify.RingCentral && !hasSecrets:
		l.Addf(at.Key, "%s: set secrets: (the verificationToken the RingCentral subscription was created with)", path)
	case name == verify.Chatwoot && !hasSecrets && !hasUnsigned:
		l.Addf(at.Key, "%s: set secrets: (or, for installs too old to sign, allow_unsigned_with_token:)", path)
	case name != verify.Freshdesk && name != verify.Chatwoot && name != verify.Qualtrics && name != verify.Five9 && !hasSecrets:
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

func (l *sources) secretList(at yamlconf.Pair, path string, webhookSecrets bool) []verify.Secret {
	var out []verify.Secret
	l.SecretList(at, path, l.Refs, func(item *yaml.Node, path string, s yamlconf.Secret) {
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

func (l *sources) secret(n *yaml.Node, path string) (yamlconf.Secret, bool) {
	return l.Secret(n, path, l.Refs)
}

func (l *sources) basicAuth(n *yaml.Node, path string) *verify.BasicAuth {
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

// surveySettings reads a survey source's mapping settings: ticket_field, score_question and scale
// are required, the others optional; every value is a non-empty string.
func (l *sources) surveySettings(at yamlconf.Pair, f map[string]yamlconf.Pair, path string) adapter.Settings {
	var out adapter.Settings
	for _, k := range []struct {
		key      string
		dst      *string
		required bool
	}{
		{"ticket_field", &out.TicketField, true},
		{"agent_field", &out.AgentField, false},
		{"score_question", &out.ScoreQuestion, true},
		{"comment_question", &out.CommentQuestion, false},
		{"scale", &out.Scale, true},
	} {
		p, ok := f[k.key]
		if !ok {
			if k.required {
				l.Addf(at.Key, "%s: missing %s: (see docs/surveys.md)", path, k.key)
			}
			continue
		}
		v, ok := l.Str(p.Val, path+"."+k.key)
		if !ok {
			continue
		}
		if strings.TrimSpace(v) == "" {
			l.Addf(p.Val, "%s.%s: must not be empty", path, k.key)
			continue
		}
		*k.dst = v
	}
	if p, ok := f["scale"]; ok && out.Scale != "" {
		if _, err := survey.ParseScale(out.Scale); err != nil {
			l.Addf(p.Val, "%s.scale: %v", path, err)
		}
	}
	return out
}

// crm reads the settings only the CRM sources have: the account the deliveries must name, the
// HubSpot target URL, and the statuses: mapping (the source's status or pipeline stage id to
// a canonical status) that replaces the adapter's defaults.
func (l *sources) crm(f map[string]yamlconf.Pair, sc *SourceConfig, at yamlconf.Pair, path string) {
	if p, ok := f["organization_id"]; ok {
		if v, ok := l.Str(p.Val, path+".organization_id"); ok {
			sc.CRM.Accounts = []string{v}
		}
	} else if sc.Source == verify.Salesforce {
		l.Addf(at.Key, "%s: missing organization_id: (Setup > Company Information > Salesforce.com Organization ID)", path)
	}
	if p, ok := f["target_url"]; ok {
		if v, ok := l.Str(p.Val, path+".target_url"); ok {
			sc.CRM.TargetURL = v
		}
	} else if sc.Source == verify.HubSpot {
		l.Addf(at.Key, "%s: missing target_url: (the app's webhook target URL, exactly as HubSpot has it)", path)
	}
	if p, ok := f["portal_ids"]; ok {
		if v, ok := l.Strings(p.Val, path+".portal_ids"); ok {
			sc.CRM.Accounts = v
		}
	}
	switch name := sc.Source; name {
	case verify.HubSpot:
		sc.HubSpotAPI = l.vendorAPI(f, at, path, name)
	case verify.SurveyMonkey, verify.Qualtrics:
		sc.SurveyAPI = l.vendorAPI(f, at, path, name)
	}
	if p, ok := f["statuses"]; ok {
		pairs, _ := l.Pairs(p.Val, path+".statuses")
		sc.Statuses = make(map[string]string, len(pairs))
		for _, kv := range pairs {
			if v, ok := l.OneOf(kv.Val, yamlconf.Join(path+".statuses", kv.Key.Value), "status", StatusWords...); ok {
				sc.Statuses[kv.Key.Value] = v
			}
		}
	}
}

// vendorAPI reads the access that lets an adapter look up what a webhook only names: access_token
// (a secret reference) and api_url. HubSpot's and SurveyMonkey's api_url defaults to the
// vendor's API (only a test or a proxy changes it); Qualtrics has one per datacenter, so it is
// required with a token.
func (l *sources) vendorAPI(f map[string]yamlconf.Pair, at yamlconf.Pair, path, name string) vendorapi.Access {
	var a vendorapi.Access
	p, hasToken := f["access_token"]
	if hasToken {
		if s, ok := l.secret(p.Val, path+".access_token"); ok {
			a.Token = vendorapi.NewToken(string(s.Value))
		}
	}
	example := "https://api.example.com"
	switch name {
	case verify.HubSpot:
		a.BaseURL, example = hsapi.DefaultBaseURL, hsapi.DefaultBaseURL
	case verify.SurveyMonkey:
		a.BaseURL, example = SurveyMonkeyAPI, SurveyMonkeyAPI
	case verify.Qualtrics:
		example = "https://yul1.qualtrics.com"
	}
	p, hasURL := f["api_url"]
	switch {
	case hasURL:
		v, ok := l.Str(p.Val, path+".api_url")
		switch {
		case !ok:
		case !hasToken:
			l.Addf(p.Val, "%s.api_url: applies only with access_token:", path)
		default:
			if err := vendorapi.CheckBaseURL(v, example); err != nil {
				l.Addf(p.Val, "%s.api_url: %v", path, err)
			} else {
				a.BaseURL = strings.TrimSuffix(v, "/")
			}
		}
	case hasToken && name == verify.Qualtrics:
		l.Addf(at.Key, "%s: access_token: needs api_url: (the brand's datacenter, as %s)", path, example)
	}
	return a
}

// SurveyMonkeyAPI is SurveyMonkey's API, a surveymonkey source's api_url unless it says
// otherwise. Accounts in SurveyMonkey's EU and Canada data centres set theirs.
const SurveyMonkeyAPI = "https://api.surveymonkey.com"
