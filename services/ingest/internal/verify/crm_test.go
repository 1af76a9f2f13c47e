package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// The vectors marked "openssl" were computed outside Go and pasted here:
//
//	printf '%s' 'POSThttps://hooks.example.com/v1/tenants/acme/webhooks/hubspot[{"eventId":1,...}]1795514400000' |
//	  openssl dgst -sha256 -hmac 'hs-client-secret' -binary | base64
//	printf '%s' '1795514400.{"organization_id":"00D5g000004XyZaEAK","record":{}}' |
//	  openssl dgst -sha256 -hmac 'sf-flow-secret'
const (
	hsURL       = "https://hooks.example.com/v1/tenants/acme/webhooks/hubspot"
	hsBody      = `[{"eventId":1,"portalId":62515,"objectId":101,"subscriptionType":"ticket.creation","occurredAt":1795514390000}]`
	hsTS        = "1795514400000" // testNow in milliseconds
	hsOpenSSL   = "3LYmAche4eL4stAt/py/g22pnEV3Lt8em4gMDRB9SaI="
	sfOrg       = "00D5g000004XyZaEAK"
	sfFlowBody  = `{"organization_id":"00D5g000004XyZaEAK","record":{}}`
	sfOpenSSL   = "24784a48aecb0949dd896c264458bdf7bf45685be956919a795dba1478dda1c7"
	sfToken     = "sf-url-token"
	sfFlowKey   = "sf-flow-secret"
	hsSecretKey = "hs-client-secret"
)

func hubSpotSig(key, uri, body, ts string) string {
	return b64(mac(sha256.New, key, "POST"+uri+body+ts))
}

func sfFlowSig(key, ts, body string) string {
	return "v1=" + hex.EncodeToString(mac(sha256.New, key, ts+"."+body))
}

func soap(org string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>` + org + `</OrganizationId>
   <ActionId>04k5g000000KzvUAAS</ActionId>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>`
}

func TestCRMVectorsMatchOpenSSL(t *testing.T) {
	if got := hubSpotSig(hsSecretKey, hsURL, hsBody, hsTS); got != hsOpenSSL {
		t.Errorf("HubSpot reference signer %s, openssl %s", got, hsOpenSSL)
	}
	if got := sfFlowSig(sfFlowKey, unix(testNow), sfFlowBody); got != "v1="+sfOpenSSL {
		t.Errorf("Salesforce reference signer %s, openssl %s", got, sfOpenSSL)
	}
}

func TestSalesforce(t *testing.T) {
	both := Config{Source: Salesforce, URLToken: NewSecret([]byte(sfToken)), Secrets: secrets("old", sfFlowKey),
		CRM: CRMConfig{Accounts: []string{sfOrg}}}
	fifteen := both
	fifteen.CRM.Accounts = []string{sfOrg[:15]}
	soapOnly := Config{Source: Salesforce, URLToken: NewSecret([]byte(sfToken)), CRM: CRMConfig{Accounts: []string{sfOrg}}}
	flowOnly := Config{Source: Salesforce, Secrets: secrets(sfFlowKey), CRM: CRMConfig{Accounts: []string{sfOrg}}}
	xmlH := func(kv ...string) http.Header {
		return hdr(append([]string{"Content-Type", "text/xml; charset=utf-8"}, kv...)...)
	}
	tok := url.Values{TokenParam: {sfToken}}
	ts := unix(testNow)
	flow := func(sig, ts, body string) Delivery {
		return Delivery{Header: hdr("Content-Type", "application/json", hSalesforceSig, sig, hSalesforceTime, ts), Body: []byte(body)}
	}
	otherOrgBody := strings.Replace(sfFlowBody, sfOrg, "00D000000000001AAA", 1)
	tests := []struct {
		name    string
		cfg     Config
		give    Delivery
		wantVia Via
		want    Reason
	}{
		{"outbound message", both, Delivery{Header: xmlH(), Query: tok, Body: []byte(soap(sfOrg))}, ViaToken, ""},
		{"outbound message, application/xml", soapOnly, Delivery{Header: hdr("Content-Type", "application/xml"), Query: tok, Body: []byte(soap(sfOrg))}, ViaToken, ""},
		{"outbound message, 15 character org configured", fifteen, Delivery{Header: xmlH(), Query: tok, Body: []byte(soap(sfOrg))}, ViaToken, ""},
		{"outbound message, 15 character org sent", both, Delivery{Header: xmlH(), Query: tok, Body: []byte(soap(sfOrg[:15]))}, ViaToken, ""},
		{"outbound message, other org", both, Delivery{Header: xmlH(), Query: tok, Body: []byte(soap("00D000000000001AAA"))}, "", ReasonWrongAccount},
		{"outbound message, org differs in case only", both, Delivery{Header: xmlH(), Query: tok, Body: []byte(soap(strings.ToLower(sfOrg)))}, "", ReasonWrongAccount},
		{"outbound message, a second org hidden deeper", both, Delivery{Header: xmlH(), Query: tok,
			Body: []byte(strings.Replace(soap(sfOrg), "<ActionId>", "<x><OrganizationId>00D000000000001AAA</OrganizationId></x><ActionId>", 1))}, "", ReasonWrongAccount},
		{"outbound message without token", both, Delivery{Header: xmlH(), Body: []byte(soap(sfOrg))}, "", ReasonMissingCredentials},
		{"outbound message, wrong token", both, Delivery{Header: xmlH(), Query: url.Values{TokenParam: {"nope"}}, Body: []byte(soap(sfOrg))}, "", ReasonBadToken},
		{"outbound message to a Flow-only tenant", flowOnly, Delivery{Header: xmlH(), Query: tok, Body: []byte(soap(sfOrg))}, "", ReasonMissingCredentials},
		{"flow callout (openssl vector)", both, flow("v1="+sfOpenSSL, ts, sfFlowBody), ViaSignature, ""},
		{"flow callout, other org", both, flow(sfFlowSig(sfFlowKey, ts, otherOrgBody), ts, otherOrgBody), "", ReasonWrongAccount},
		{"flow callout, body not JSON is the adapter's", both, flow(sfFlowSig(sfFlowKey, ts, "<x/>"), ts, "<x/>"), ViaSignature, ""},
		{"flow callout unsigned", both, Delivery{Header: hdr("Content-Type", "application/json"), Body: []byte(sfFlowBody)}, "", ReasonMissingSignature},
		{"flow callout without timestamp", both, flow("v1="+sfOpenSSL, "", sfFlowBody), "", ReasonMissingTimestamp},
		{"flow callout, signature not hex", both, flow("v1=zz", ts, sfFlowBody), "", ReasonMalformedSignature},
		{"flow callout, signature without v1=", both, flow(sfOpenSSL, ts, sfFlowBody), "", ReasonMalformedSignature},
		{"flow callout, timestamp in ms", both, flow("v1="+sfOpenSSL, ts+"000", sfFlowBody), "", ReasonBadTimestamp},
		{"flow callout, tampered", both, flow("v1="+sfOpenSSL, ts, strings.Replace(sfFlowBody, "{}", `{"a":1}`, 1)), "", ReasonBadSignature},
		{"flow callout, stale", both, flow(sfFlowSig(sfFlowKey, unix(testNow.Add(-6*60e9)), sfFlowBody), unix(testNow.Add(-6*60e9)), sfFlowBody), "", ReasonStaleTimestamp},
		{"flow callout to an Outbound-Message-only tenant", soapOnly, flow("v1="+sfOpenSSL, ts, sfFlowBody), "", ReasonMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := testVerifier.Verify(&tt.cfg, tt.give)
			var reason Reason
			if rej, ok := errors.AsType[*Rejection](err); ok {
				reason = rej.Reason
				if rej.Forbidden() != (reason == ReasonWrongAccount) {
					t.Errorf("Forbidden() %v for %s", rej.Forbidden(), reason)
				}
			} else if err != nil {
				t.Fatalf("error %v", err)
			}
			if reason != tt.want || res.Via != tt.wantVia {
				t.Errorf("got via %q reason %q (%v), want via %q reason %q", res.Via, reason, err, tt.wantVia, tt.want)
			}
		})
	}
}

func TestHubSpot(t *testing.T) {
	cfg := Config{Source: HubSpot, Secrets: secrets("rotated-out", hsSecretKey), CRM: CRMConfig{TargetURL: hsURL}}
	portal := cfg
	portal.CRM.Accounts = []string{"62515"}
	otherPortal := cfg
	otherPortal.CRM.Accounts = []string{"99"}
	d := func(sig, ts, body string) Delivery {
		return Delivery{Header: hdr(hHubSpotSig, sig, hHubSpotTime, ts), Body: []byte(body)}
	}
	stale := strconv.FormatInt(testNow.Add(-301e9).UnixMilli(), 10)
	encodedURL := "https://hooks.example.com/v1/tenants/acme/webhooks/hubspot?x=a%3Ab"
	encoded := cfg
	encoded.CRM.TargetURL = encodedURL
	tests := []struct {
		name string
		cfg  Config
		give Delivery
		want Reason
	}{
		{"openssl vector", cfg, d(hsOpenSSL, hsTS, hsBody), ""},
		{"portal listed", portal, d(hsOpenSSL, hsTS, hsBody), ""},
		{"portal not listed", otherPortal, d(hsOpenSSL, hsTS, hsBody), ReasonWrongAccount},
		{"URI with HubSpot's decoded escapes", encoded, d(hubSpotSig(hsSecretKey, "https://hooks.example.com/v1/tenants/acme/webhooks/hubspot?x=a:b", hsBody, hsTS), hsTS, hsBody), ""},
		{"signed for another URL", cfg, d(hubSpotSig(hsSecretKey, "https://elsewhere.example.com/hook", hsBody, hsTS), hsTS, hsBody), ReasonBadSignature},
		{"signed with GET", cfg, d(b64(mac(sha256.New, hsSecretKey, "GET"+hsURL+hsBody+hsTS)), hsTS, hsBody), ReasonBadSignature},
		{"timestamp in seconds", cfg, d(hsOpenSSL, hsTS[:10], hsBody), ReasonBadSignature},
		{"no signature", cfg, d("", hsTS, hsBody), ReasonMissingSignature},
		{"no timestamp", cfg, d(hsOpenSSL, "", hsBody), ReasonMissingTimestamp},
		{"signature not base64", cfg, d("!!", hsTS, hsBody), ReasonMalformedSignature},
		{"v1 style hex signature", cfg, d(hex.EncodeToString(mac(sha256.New, hsSecretKey, hsBody)), hsTS, hsBody), ReasonMalformedSignature},
		{"timestamp not a number", cfg, d(hsOpenSSL, "-1", hsBody), ReasonBadTimestamp},
		{"tampered body", cfg, d(hsOpenSSL, hsTS, strings.Replace(hsBody, "101", "102", 1)), ReasonBadSignature},
		{"stale by a second past five minutes", cfg, d(hubSpotSig(hsSecretKey, hsURL, hsBody, stale), stale, hsBody), ReasonStaleTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := testVerifier.Verify(&tt.cfg, tt.give)
			var reason Reason
			if rej, ok := errors.AsType[*Rejection](err); ok {
				reason = rej.Reason
			} else if err != nil {
				t.Fatalf("error %v", err)
			}
			if reason != tt.want || (tt.want == "") != (res.Via == ViaSignature) {
				t.Errorf("got %+v reason %q (%v), want reason %q", res, reason, err, tt.want)
			}
		})
	}
}

func TestCRMConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		give Config
		want string // "" is usable
	}{
		{"salesforce token and org", Config{Source: Salesforce, URLToken: NewSecret([]byte("t")), CRM: CRMConfig{Accounts: []string{sfOrg}}}, ""},
		{"salesforce without org", Config{Source: Salesforce, URLToken: NewSecret([]byte("t"))}, "needs the organisation id"},
		{"salesforce bad org", Config{Source: Salesforce, URLToken: NewSecret([]byte("t")), CRM: CRMConfig{Accounts: []string{"00D-1"}}}, "not a 15 or 18 character"},
		{"salesforce without credential", Config{Source: Salesforce, CRM: CRMConfig{Accounts: []string{sfOrg}}}, "needs a URL token"},
		{"hubspot", Config{Source: HubSpot, Secrets: secrets("s"), CRM: CRMConfig{TargetURL: hsURL, Accounts: []string{"62515"}}}, ""},
		{"hubspot without URL", Config{Source: HubSpot, Secrets: secrets("s")}, "needs the target URL"},
		{"hubspot with a token", Config{Source: HubSpot, Secrets: secrets("s"), URLToken: NewSecret([]byte("t")), CRM: CRMConfig{TargetURL: hsURL}}, "URL token does not apply"},
		{"hubspot bad portal", Config{Source: HubSpot, Secrets: secrets("s"), CRM: CRMConfig{TargetURL: hsURL, Accounts: []string{"p1"}}}, "portal id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check() = %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzXMLOrganizations: the scan never panics, and every id it finds is short.
func FuzzXMLOrganizations(f *testing.F) {
	f.Add([]byte(soap(sfOrg)))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><OrganizationId>&a;</OrganizationId>`))
	f.Add([]byte(`<a><OrganizationId>1<b/>2</OrganizationId>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, org := range xmlOrganizations(body) {
			if len(org) > 64 {
				t.Fatalf("organisation id of %d bytes", len(org))
			}
		}
	})
}
