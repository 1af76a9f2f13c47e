package verify_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/salesforce"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
)

// FuzzOrganizationCheckCoversTheAdapter: the organisation check reads the Outbound Message
// apart from the adapter, so the two must not disagree. Whatever body the adapter maps, the
// check passes it for at most one organisation: a body it passed for any organisation (one
// whose OrganizationId the check did not see) would let one tenant's token post another org's
// cases.
func FuzzOrganizationCheckCoversTheAdapter(f *testing.F) {
	paths, err := filepath.Glob("../adapter/salesforce/testdata/*.xml")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	const token = "t0ken"
	cfg := func(org string) *verify.Config {
		return &verify.Config{Source: verify.Salesforce, URLToken: verify.NewSecret([]byte(token)),
			CRM: verify.CRMConfig{Accounts: []string{org}}}
	}
	orgs := []*verify.Config{cfg("00D5g000004XyZaEAK"), cfg("00D000000000001AAA")}
	h := http.Header{"Content-Type": {"text/xml; charset=utf-8"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := salesforce.New().Map(adapter.Delivery{Header: h, Body: body}); err != nil {
			return
		}
		passed := 0
		for _, c := range orgs {
			if _, err := (verify.Verifier{}).Verify(c, verify.Delivery{Header: h, Query: url.Values{"token": {token}}, Body: body}); err == nil {
				passed++
			}
		}
		if passed > 1 {
			t.Fatalf("a body the adapter maps passed the organisation check for two organisations:\n%s", body)
		}
	})
}
