// Package verify decides whether one webhook delivery really comes from the helpdesk a tenant set
// up: signatures, signed timestamps, URL tokens and Basic auth, each the way its source does it.
// It knows nothing of files or YAML; package tenants builds its Config.
//
// Every comparison of a presented credential with a configured one is constant-time, and every
// configured secret is tried, so a rotation can list the new and the old secret side by side.
package verify

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The sources, as named in the webhook route and the canonical event.
const (
	Zendesk   = "zendesk"
	Chatwoot  = "chatwoot"
	Freshdesk = "freshdesk"
	HelpScout = "helpscout"
	Zammad    = "zammad"
	Intercom  = "intercom"
	Generic   = "generic"
)

// Sources lists every source Verify knows.
var Sources = []string{Zendesk, Chatwoot, Freshdesk, HelpScout, Zammad, Intercom, Salesforce, HubSpot, Generic,
	Typeform, SurveyMonkey, Qualtrics, Five9, Genesys, RingCentral}

// DefaultTolerance is how far a signed timestamp may be from now, either way, when the Config
// does not say.
const DefaultTolerance = 5 * time.Minute

// TokenParam is the query parameter that carries a URL token.
const TokenParam = "token"

// Config is what Verify needs to know about one tenant's source.
type Config struct {
	// Source is one of Sources; it fixes the signature scheme, as each helpdesk signs one way.
	Source string
	// Secrets are the signing secrets, any of which may match. For Generic they are the decoded
	// keys (see ParseWebhookSecret), not the whsec_ text.
	Secrets []Secret
	// Tolerance bounds the distance between a signed timestamp and now, both ways (Zendesk,
	// Chatwoot, Generic); 0 means DefaultTolerance.
	Tolerance time.Duration
	// URLToken is accepted in the token query parameter: for Freshdesk as a credential of its
	// own, for Chatwoot only in place of a missing signature (older installs cannot sign).
	URLToken Secret
	// BasicAuth is the other Freshdesk credential.
	BasicAuth *BasicAuth
	// APIKey is SurveyMonkey's client API key: with an API secret from Secrets it makes the
	// signing key, and deliveries name it in Sm-Apikey. It is an identifier, not a secret.
	APIKey string
	// CRM is what Salesforce and HubSpot deliveries are checked against besides a secret.
	CRM CRMConfig
}

// BasicAuth is an HTTP Basic user and password.
type BasicAuth struct {
	User     string
	Password Secret
}

// ErrConfig reports a Config that cannot accept any delivery: a server-side problem, never the
// sender's, so it is not a Rejection.
var ErrConfig = errors.New("unusable webhook source config")

// Check reports what makes c unusable, wrapping ErrConfig.
func (c *Config) Check() error {
	var problems []string
	add := func(s string) { problems = append(problems, s) }
	for i, s := range c.Secrets {
		if s.IsZero() {
			add(fmt.Sprintf("secret %d is empty", i))
		}
	}
	if c.Tolerance < 0 {
		add("negative tolerance")
	}
	if c.BasicAuth != nil {
		if c.BasicAuth.User == "" || strings.Contains(c.BasicAuth.User, ":") {
			add("Basic auth user must be non-empty and hold no colon")
		}
		if c.BasicAuth.Password.IsZero() {
			add("Basic auth password is empty")
		}
	}
	signing := len(c.Secrets) > 0
	if c.APIKey != "" && c.Source != SurveyMonkey {
		add("an API key applies to surveymonkey only")
	}
	switch c.Source {
	case Zendesk, HelpScout, Zammad, Intercom, Generic:
		if !signing {
			add("needs a signing secret")
		}
		if !c.URLToken.IsZero() || c.BasicAuth != nil {
			add(c.Source + " deliveries are signed; a URL token or Basic auth does not apply")
		}
	case Chatwoot:
		if !signing && c.URLToken.IsZero() {
			add("needs a signing secret or a URL token for unsigned deliveries")
		}
		if c.BasicAuth != nil {
			add("Basic auth does not apply to chatwoot")
		}
	case Freshdesk:
		if c.URLToken.IsZero() && c.BasicAuth == nil {
			add("needs a URL token or Basic auth")
		}
		if signing {
			add("freshdesk cannot sign; signing secrets do not apply")
		}
	case Typeform, SurveyMonkey, Qualtrics:
		checkSurvey(c, add)
	case Salesforce, HubSpot:
		c.checkCRM(add)
	case Five9, Genesys, RingCentral:
		c.checkContactCentre(add)
	default:
		add(fmt.Sprintf("unknown source %q", c.Source))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	return nil
}

// LogValue describes c without a single secret byte.
func (c *Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("source", c.Source),
		slog.Int("secrets", len(c.Secrets)),
		slog.Bool("url_token", !c.URLToken.IsZero()),
	}
	if c.Tolerance > 0 {
		attrs = append(attrs, slog.Duration("tolerance", c.Tolerance))
	}
	if c.BasicAuth != nil {
		attrs = append(attrs, slog.String("basic_auth_user", c.BasicAuth.User))
	}
	if c.APIKey != "" {
		attrs = append(attrs, slog.String("api_key", c.APIKey))
	}
	return slog.GroupValue(attrs...)
}

// Delivery is one webhook request as received: Body is the raw bytes, before any decoding.
type Delivery struct {
	Header http.Header
	Query  url.Values
	Body   []byte
}

// Via says how an accepted delivery proved where it came from.
type Via string

// The ways a delivery can prove its origin.
const (
	ViaSignature Via = "signature"
	ViaToken     Via = "token"
	ViaBasicAuth Via = "basic_auth"
)

// Result describes an accepted delivery.
type Result struct {
	// DeliveryID is the source's own delivery id (X-Chatwoot-Delivery, X-Zammad-Delivery,
	// webhook-id), empty when the source sends none. Only webhook-id is covered by the signature.
	DeliveryID string
	Via        Via
}

// Reason is a rejection's machine-readable cause, meant as a metrics label.
type Reason string

// The rejection reasons.
const (
	ReasonMissingSignature   Reason = "missing_signature"
	ReasonMalformedSignature Reason = "malformed_signature"
	ReasonBadSignature       Reason = "bad_signature"
	ReasonMissingTimestamp   Reason = "missing_timestamp"
	ReasonBadTimestamp       Reason = "bad_timestamp"
	ReasonStaleTimestamp     Reason = "stale_timestamp"
	ReasonFutureTimestamp    Reason = "future_timestamp"
	ReasonMissingID          Reason = "missing_id"
	ReasonMissingCredentials Reason = "missing_credentials"
	ReasonBadToken           Reason = "bad_token"
	ReasonBadBasicAuth       Reason = "bad_basic_auth"
	ReasonUnsignedNotAllowed Reason = "unsigned_not_allowed"
)

// Reasons lists every Reason, so a counter can start each series at zero.
var Reasons = []Reason{
	ReasonMissingSignature, ReasonMalformedSignature, ReasonBadSignature,
	ReasonMissingTimestamp, ReasonBadTimestamp, ReasonStaleTimestamp, ReasonFutureTimestamp,
	ReasonMissingID, ReasonMissingCredentials, ReasonBadToken, ReasonBadBasicAuth,
	ReasonUnsignedNotAllowed, ReasonWrongAccount,
}

// Rejection is a delivery that failed verification. Message is for the sender and the log: it
// names headers and limits, never a secret or an expected signature.
type Rejection struct {
	Reason  Reason
	Message string
}

func (r *Rejection) Error() string {
	return "webhook rejected (" + string(r.Reason) + "): " + r.Message
}

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Verifier checks deliveries. The zero value uses the system clock.
type Verifier struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verify checks d against cfg. It returns a *Rejection when the sender failed to prove itself, an
// error wrapping ErrConfig when cfg cannot accept anything, and otherwise the Result.
func (v Verifier) Verify(cfg *Config, d Delivery) (Result, error) {
	if err := cfg.Check(); err != nil {
		return Result{}, err
	}
	if d.Header == nil {
		d.Header = http.Header{}
	}
	var res Result
	var rej *Rejection
	switch cfg.Source {
	case Zendesk:
		res, rej = v.zendesk(cfg, d)
	case Chatwoot:
		res, rej = v.chatwoot(cfg, d)
	case Freshdesk:
		res, rej = freshdesk(cfg, d)
	case HelpScout:
		res, rej = helpScout(cfg, d)
	case Zammad:
		res, rej = hubSHA1(cfg, d)
		res.DeliveryID = d.Header.Get("X-Zammad-Delivery")
	case Intercom:
		res, rej = hubSHA1(cfg, d)
	case Salesforce:
		res, rej = v.salesforce(cfg, d)
	case HubSpot:
		res, rej = v.hubSpot(cfg, d)
	case Generic:
		res, rej = v.standardWebhooks(cfg, d)
	case Typeform:
		res, rej = typeform(cfg, d)
	case SurveyMonkey:
		res, rej = surveyMonkey(cfg, d)
	case Qualtrics:
		res, rej = qualtrics(cfg, d)
	case Five9:
		res, rej = five9(cfg, d)
	case Genesys:
		res, rej = genesys(cfg, d)
	case RingCentral:
		res, rej = ringCentral(cfg, d)
	}
	if rej != nil {
		return Result{}, rej
	}
	return res, nil
}

func (v Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// fresh bounds a signed timestamp both ways: too old is a replay or a sender that queued for
// long, too new is a skewed clock (or a replay prepared in advance).
func (v Verifier) fresh(cfg *Config, header string, t time.Time) *Rejection {
	tol := cfg.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	now := v.now()
	switch {
	case t.Before(now.Add(-tol)):
		return reject(ReasonStaleTimestamp, "%s is %s old; the tolerance is %s",
			header, now.Sub(t).Truncate(time.Second), tol)
	case t.After(now.Add(tol)):
		return reject(ReasonFutureTimestamp, "%s is %s ahead of this server's clock; the tolerance is %s",
			header, t.Sub(now).Truncate(time.Second), tol)
	}
	return nil
}
