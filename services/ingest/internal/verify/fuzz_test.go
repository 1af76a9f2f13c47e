package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// fuzzConfigs holds one usable Config per source; the fuzzer's header values go to all of them.
func fuzzConfigs(t testing.TB) []Config {
	k, err := ParseWebhookSecret("whsec_" + base64.StdEncoding.EncodeToString([]byte(fuzzKey)))
	if err != nil {
		t.Fatal(err)
	}
	tok := NewSecret([]byte(fuzzToken))
	return []Config{
		{Source: Zendesk, Secrets: secrets("other", fuzzKey)},
		{Source: Chatwoot, Secrets: secrets(fuzzKey), URLToken: tok},
		{Source: Chatwoot, Secrets: secrets(fuzzKey)},
		{Source: Chatwoot, URLToken: tok},
		{Source: Freshdesk, URLToken: tok, BasicAuth: &BasicAuth{User: "tp", Password: NewSecret([]byte(fuzzToken))}},
		{Source: HelpScout, Secrets: secrets(fuzzKey)},
		{Source: Zammad, Secrets: secrets(fuzzKey)},
		{Source: Intercom, Secrets: secrets("other", fuzzKey)},
		{Source: Salesforce, Secrets: secrets(fuzzKey), URLToken: tok, CRM: CRMConfig{Accounts: []string{sfOrg}}},
		{Source: HubSpot, Secrets: secrets(fuzzKey), CRM: CRMConfig{TargetURL: hsURL, Accounts: []string{"62515"}}},
		{Source: Generic, Secrets: []Secret{k}},
	}
}

const (
	fuzzKey   = "fuzz-key"
	fuzzToken = "fuzz-token"
)

// FuzzVerify feeds arbitrary header values, query and body to every source. Verify must not
// panic, must answer either a Result or a listed Rejection, must never quote a secret, and a
// delivery accepted on its signature must stop being accepted when one byte is added to the body.
func FuzzVerify(f *testing.F) {
	const body = `{"id":"evt-1"}`
	ts, rts := unix(testNow), rfc(testNow)
	seeds := []struct{ sig, ts, id, query, auth, body string }{
		{zendeskSig(fuzzKey, rts, body), rts, "", "", "", body},
		{chatwootSig(fuzzKey, ts, body), ts, "dlv", "", "", body},
		{"", "", "dlv", "token=" + fuzzToken, "", body},
		{"", "", "", "", "Basic " + b64([]byte("tp:"+fuzzToken)), body},
		{helpScoutSig(fuzzKey, body), "", "", "", "", body},
		{hubSig(fuzzKey, body), "", "z-1", "", "", body},
		{"v1,x v1a,y " + swSig(fuzzKey, "msg_1", ts, body), ts, "msg_1", "", "", body},
		{sfFlowSig(fuzzKey, ts, sfFlowBody), ts, "", "", "", sfFlowBody},
		{hubSpotSig(fuzzKey, hsURL, hsBody, hsTS), hsTS, "", "", "", hsBody},
		{"sha256=zz", "-1", "", "token=&token=x", "Basic %%%", ""},
		{"v1,", "99999999999", "\x00", "%zz", "Bearer", "\xff"},
	}
	for _, s := range seeds {
		f.Add(s.sig, s.ts, s.id, s.query, s.auth, []byte(s.body))
	}
	configs := fuzzConfigs(f)
	f.Fuzz(func(t *testing.T, sig, ts, id, rawQuery, auth string, body []byte) {
		h := http.Header{}
		for _, name := range []string{hZendeskSignature, hChatwootSig, hHelpScoutSig, hHubSignature, hWebhookSignature, hSalesforceSig, hHubSpotSig} {
			h.Set(name, sig)
		}
		for _, name := range []string{hZendeskTimestamp, hChatwootTime, hWebhookTimestamp, hSalesforceTime, hHubSpotTime} {
			h.Set(name, ts)
		}
		for _, name := range []string{hChatwootDelivery, "X-Zammad-Delivery", hWebhookID} {
			h.Set(name, id)
		}
		h.Set("Authorization", auth)
		q, _ := url.ParseQuery(rawQuery) // keeps what parses, as net/http does
		for i := range configs {
			cfg := &configs[i]
			d := Delivery{Header: h, Query: q, Body: body}
			res, err := testVerifier.Verify(cfg, d)
			if err != nil {
				rej, ok := errors.AsType[*Rejection](err)
				if !ok {
					t.Fatalf("%s: error %v is not a *Rejection", cfg.Source, err)
				}
				if !slices.Contains(Reasons, rej.Reason) || rej.Message == "" {
					t.Fatalf("%s: rejection %+v", cfg.Source, rej)
				}
				if strings.Contains(rej.Error(), fuzzKey) || strings.Contains(rej.Error(), fuzzToken) {
					t.Fatalf("%s: rejection quotes a secret: %v", cfg.Source, rej)
				}
				if res != (Result{}) {
					t.Fatalf("%s: result %+v returned with a rejection", cfg.Source, res)
				}
				continue
			}
			if res.Via == "" {
				t.Fatalf("%s: accepted without saying how", cfg.Source)
			}
			if res.Via != ViaSignature {
				continue
			}
			d.Body = append(bytes.Clone(body), '!')
			if _, err := testVerifier.Verify(cfg, d); err == nil {
				t.Fatalf("%s: signature still accepted after the body changed", cfg.Source)
			}
		}
	})
}
