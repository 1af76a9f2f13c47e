package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"mime"
	"strings"
	"time"
)

// The CRM sources. They differ from the helpdesks in one way that matters here: a delivery names
// the CRM account it comes from (a Salesforce organisation, a HubSpot portal), and that account
// must be the tenant's, or one tenant's credentials would carry another account's cases.
const (
	Salesforce = "salesforce"
	HubSpot    = "hubspot"
)

// ReasonWrongAccount is a delivery that proved its sender but names a CRM account (Salesforce
// organisation, HubSpot portal) the tenant did not configure: forbidden, not unauthenticated.
const ReasonWrongAccount Reason = "wrong_account"

// Forbidden reports a rejection of a sender that proved itself but may not post to this tenant
// (ReasonWrongAccount): HTTP 403 rather than 401.
func (r *Rejection) Forbidden() bool { return r.Reason == ReasonWrongAccount }

// CRMConfig is what the Salesforce and HubSpot schemes check besides the secrets.
type CRMConfig struct {
	// Accounts are the CRM accounts a delivery may name: Salesforce organisation ids (15 or 18
	// characters, compared on the case-sensitive first 15), HubSpot portal ids. Required for
	// Salesforce; for HubSpot, empty accepts any portal the signing app sends.
	Accounts []string
	// TargetURL is the webhook URL exactly as set in the HubSpot app: HubSpot signs it, and
	// behind a proxy the request cannot tell what the sender dialled.
	TargetURL string
}

// Header names of the CRM schemes. The Salesforce Flow callout's are Ticketpulse's own (see
// deploy/webhooks/salesforce): Salesforce has no signing scheme for callouts.
const (
	hSalesforceSig   = "X-Ticketpulse-Signature"
	hSalesforceTime  = "X-Ticketpulse-Timestamp"
	hHubSpotSig      = "X-HubSpot-Signature-v3"
	hHubSpotTime     = "X-HubSpot-Request-Timestamp"
	salesforceSigPre = "v1="
)

// checkCRM adds the problems of a CRM source's Config to add.
func (c *Config) checkCRM(add func(string)) {
	signing := len(c.Secrets) > 0
	if c.BasicAuth != nil {
		add("Basic auth does not apply to " + c.Source)
	}
	switch c.Source {
	case Salesforce:
		if !signing && c.URLToken.IsZero() {
			add("needs a URL token (Outbound Messages) or a signing secret (Flow callouts)")
		}
		if len(c.CRM.Accounts) == 0 {
			add("needs the organisation id")
		}
		for _, a := range c.CRM.Accounts {
			if !salesforceID(a) {
				add(fmt.Sprintf("organisation id %q is not a 15 or 18 character Salesforce id", a))
			}
		}
		if c.CRM.TargetURL != "" {
			add("a target URL does not apply to salesforce")
		}
	case HubSpot:
		if !signing {
			add("needs the app's client secret")
		}
		if !c.URLToken.IsZero() {
			add("hubspot deliveries are signed; a URL token does not apply")
		}
		if !strings.HasPrefix(c.CRM.TargetURL, "https://") && !strings.HasPrefix(c.CRM.TargetURL, "http://") {
			add("needs the target URL as set in the HubSpot app (http:// or https://)")
		}
		for _, a := range c.CRM.Accounts {
			if a == "" || strings.Trim(a, "0123456789") != "" {
				add(fmt.Sprintf("portal id %q is not a number", a))
			}
		}
	}
}

// salesforceID reports a 15 or 18 character alphanumeric id.
func salesforceID(s string) bool {
	if len(s) != 15 && len(s) != 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// sameOrganization compares Salesforce ids on their first 15 characters, case-sensitively: the
// 18 character form only appends a checksum of the letters' case.
func sameOrganization(a, b string) bool {
	return salesforceID(a) && salesforceID(b) && a[:15] == b[:15]
}

// IsXML reports a text/xml or application/xml Content-Type, which is how Salesforce sends
// Outbound Messages (SOAP 1.1); the adapter reads the body by the same rule.
func IsXML(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "text/xml" || mt == "application/xml")
}

// salesforce accepts two kinds of delivery. Outbound Messages (SOAP) cannot be signed: they
// prove themselves with the URL token, and the organisation id in the envelope must be the
// tenant's. Flow callouts are signed by the Apex action of deploy/webhooks/salesforce:
// X-Ticketpulse-Signature = "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)), with
// X-Ticketpulse-Timestamp in unix seconds, and carry the organisation id in organization_id.
func (v Verifier) salesforce(cfg *Config, d Delivery) (Result, *Rejection) {
	if IsXML(d.Header.Get("Content-Type")) {
		if cfg.URLToken.IsZero() {
			return Result{}, reject(ReasonMissingCredentials, "this tenant takes only signed Flow callouts from salesforce; configure url_token for Outbound Messages")
		}
		if !d.Query.Has(TokenParam) {
			return Result{}, reject(ReasonMissingCredentials, "salesforce Outbound Messages need the %s query parameter", TokenParam)
		}
		if !sameBytes(d.Query.Get(TokenParam), cfg.URLToken.bytes()) {
			return Result{}, reject(ReasonBadToken, "the %s query parameter is wrong", TokenParam)
		}
		if org, ok := foreignOrganization(cfg.CRM.Accounts, xmlOrganizations(d.Body)); !ok {
			return Result{}, reject(ReasonWrongAccount, "OrganizationId %q is not this tenant's Salesforce organisation", org)
		}
		return Result{Via: ViaToken}, nil
	}
	if len(cfg.Secrets) == 0 {
		return Result{}, reject(ReasonMissingSignature, "this tenant takes only Outbound Messages (text/xml) from salesforce; configure secrets for Flow callouts")
	}
	sig := d.Header.Get(hSalesforceSig)
	if sig == "" {
		return Result{}, reject(ReasonMissingSignature, "no %s header", hSalesforceSig)
	}
	if rej := v.timestampedHexMAC(cfg, d, hSalesforceSig, sig, hSalesforceTime, salesforceSigPre); rej != nil {
		return Result{}, rej
	}
	var body struct {
		OrganizationID *string `json:"organization_id"`
	}
	// A body that does not decode is the adapter's to reject, with the field and reason.
	if json.Unmarshal(d.Body, &body) == nil && body.OrganizationID != nil {
		if org, ok := foreignOrganization(cfg.CRM.Accounts, []string{*body.OrganizationID}); !ok {
			return Result{}, reject(ReasonWrongAccount, "organization_id %q is not this tenant's Salesforce organisation", org)
		}
	}
	return Result{Via: ViaSignature}, nil
}

// foreignOrganization returns the first of presented that is none of the configured ids.
func foreignOrganization(configured, presented []string) (string, bool) {
	for _, p := range presented {
		known := false
		for _, c := range configured {
			known = known || sameOrganization(c, p)
		}
		if !known {
			return truncate(p, 40), false
		}
	}
	return "", true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// xmlOrganizations returns the text of every OrganizationId element of an XML body, in any
// namespace and at any depth, so that no element the adapter might read escapes the check. It
// stops at the first XML error or DTD: the adapter refuses such a body as a whole, so whatever
// follows never counts. The body is already bounded by the webhook's size limit.
func xmlOrganizations(body []byte) []string {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var out []string
	var text *strings.Builder
	for {
		tok, err := dec.RawToken()
		if err != nil {
			return out
		}
		switch tok := tok.(type) {
		case xml.Directive:
			return out
		case xml.StartElement:
			if tok.Name.Local == "OrganizationId" {
				text = &strings.Builder{}
			}
		case xml.CharData:
			if text != nil {
				text.Write(tok[:min(len(tok), 64-text.Len())]) // an id longer than 64 is wrong anyway
			}
		case xml.EndElement:
			if text != nil && tok.Name.Local == "OrganizationId" {
				out = append(out, strings.TrimSpace(text.String()))
				text = nil
			}
		}
	}
}

// hubSpot: X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client secret, method + URI + body +
// timestamp)), X-HubSpot-Request-Timestamp in unix milliseconds. The method is POST, the only
// one the webhook route serves; the URI is the configured target URL (HubSpot signs what it
// dialled, which a proxy in front of ingest hides).
func (v Verifier) hubSpot(cfg *Config, d Delivery) (Result, *Rejection) {
	sig, ts := d.Header.Get(hHubSpotSig), d.Header.Get(hHubSpotTime)
	if sig == "" {
		return Result{}, reject(ReasonMissingSignature, "no %s header", hHubSpotSig)
	}
	if ts == "" {
		return Result{}, reject(ReasonMissingTimestamp, "no %s header", hHubSpotTime)
	}
	mac := decodeBase64MAC(sig, sha256.Size)
	if mac == nil {
		return Result{}, reject(ReasonMalformedSignature, "%s is not a base64 HMAC-SHA256", hHubSpotSig)
	}
	t, ok := parseUnixMillis(ts)
	if !ok {
		return Result{}, reject(ReasonBadTimestamp, "%s is not unix milliseconds", hHubSpotTime)
	}
	uri := hubSpotURI(cfg.CRM.TargetURL)
	if !macMatches(cfg.Secrets, sha256.New, mac, []byte("POST"), []byte(uri), d.Body, []byte(ts)) {
		return Result{}, reject(ReasonBadSignature, "%s does not match the body (is the tenant's target_url exactly the app's target URL?)", hHubSpotSig)
	}
	if rej := v.fresh(cfg, hHubSpotTime, t); rej != nil {
		return Result{}, rej
	}
	if len(cfg.CRM.Accounts) > 0 {
		if portal, ok := foreignPortal(cfg.CRM.Accounts, d.Body); !ok {
			return Result{}, reject(ReasonWrongAccount, "portalId %s is not this tenant's HubSpot portal", portal)
		}
	}
	return Result{Via: ViaSignature}, nil
}

// foreignPortal returns the first portalId of a HubSpot body that is not configured. A body that
// does not decode is the adapter's to reject.
func foreignPortal(configured []string, body []byte) (string, bool) {
	var events []struct {
		PortalID json.RawMessage `json:"portalId"`
	}
	if json.Unmarshal(body, &events) != nil {
		return "", true
	}
	for _, e := range events {
		p := strings.Trim(string(e.PortalID), `"`)
		if len(e.PortalID) == 0 || string(e.PortalID) == "null" {
			continue // the adapter requires it
		}
		known := false
		for _, c := range configured {
			known = known || c == p
		}
		if !known {
			return truncate(p, 24), false
		}
	}
	return "", true
}

// hubSpotDecoded are the escapes HubSpot decodes in the URI before signing it.
var hubSpotDecoded = strings.NewReplacer(
	"%3A", ":", "%2F", "/", "%3F", "?", "%40", "@", "%21", "!", "%24", "$", "%27", "'",
	"%28", "(", "%29", ")", "%2A", "*", "%2C", ",", "%3B", ";",
	"%3a", ":", "%2f", "/", "%3f", "?", "%2a", "*", "%2c", ",", "%3b", ";",
)

func hubSpotURI(u string) string { return hubSpotDecoded.Replace(u) }

// parseUnixMillis reads decimal unix milliseconds; like parseUnix it refuses signs, spaces and
// more than 15 digits.
func parseUnixMillis(s string) (time.Time, bool) {
	if s == "" || len(s) > 15 {
		return time.Time{}, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		n = n*10 + int64(c-'0')
	}
	return time.UnixMilli(n), true
}
