package verify

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

var byToken = Result{Via: ViaToken}

func TestFive9(t *testing.T) {
	const body = `{"eventType":"CALL_ENDED"}`
	cfg := Config{Source: Five9, URLToken: NewSecret([]byte("f9-token"))}
	req := func(q string) Delivery {
		v, _ := url.ParseQuery(q)
		return Delivery{Header: hdr(), Query: v, Body: []byte(body)}
	}
	runCases(t, []verifyCase{
		{name: "good", cfg: cfg, give: req("token=f9-token"), want: byToken},
		{name: "wrong token", cfg: cfg, give: req("token=f9-tokem"), wantReason: ReasonBadToken},
		{name: "token prefix only", cfg: cfg, give: req("token=f9-"), wantReason: ReasonBadToken},
		{name: "empty token", cfg: cfg, give: req("token="), wantReason: ReasonBadToken},
		{name: "no token", cfg: cfg, give: req(""), wantReason: ReasonMissingCredentials},
		{name: "token in a header is not the URL", cfg: cfg, give: Delivery{Header: hdr("Token", "f9-token"), Body: []byte(body)}, wantReason: ReasonMissingCredentials},
	})
}

func TestGenesys(t *testing.T) {
	const body = `{"topicName":"v2.detail.events.conversation.c1.acd.end"}`
	cfg := Config{Source: Genesys, Secrets: secrets("gc-new")}
	rotating := Config{Source: Genesys, Secrets: secrets("gc-new", "gc-old")}
	req := func(secret string) Delivery {
		return Delivery{Header: hdr("X-Ticketpulse-Secret", secret), Body: []byte(body)}
	}
	runCases(t, []verifyCase{
		{name: "good", cfg: cfg, give: req("gc-new"), want: byToken},
		{name: "header name is case-insensitive", cfg: cfg, give: Delivery{Header: hdr("x-ticketpulse-secret", "gc-new"), Body: []byte(body)}, want: byToken},
		{name: "rotation: old secret", cfg: rotating, give: req("gc-old"), want: byToken},
		{name: "old secret after rotation ended", cfg: cfg, give: req("gc-old"), wantReason: ReasonBadToken},
		{name: "wrong case", cfg: cfg, give: req("GC-NEW"), wantReason: ReasonBadToken},
		{name: "missing", cfg: cfg, give: Delivery{Header: hdr(), Body: []byte(body)}, wantReason: ReasonMissingCredentials},
		{name: "in the query instead", cfg: cfg, give: Delivery{Header: hdr(), Query: url.Values{"token": {"gc-new"}}, Body: []byte(body)}, wantReason: ReasonMissingCredentials},
	})
}

func TestRingCentral(t *testing.T) {
	const body = `{"uuid":"1","event":"/restapi/v1.0/account/~/telephony/sessions"}`
	cfg := Config{Source: RingCentral, Secrets: secrets("rc-verify")}
	runCases(t, []verifyCase{
		{name: "notification", cfg: cfg, give: Delivery{Header: hdr("Verification-Token", "rc-verify"), Body: []byte(body)}, want: byToken},
		{name: "wrong verification token", cfg: cfg, give: Delivery{Header: hdr("Verification-Token", "rc-verifx"), Body: []byte(body)}, wantReason: ReasonBadToken},
		{name: "no verification token", cfg: cfg, give: Delivery{Header: hdr(), Body: []byte(body)}, wantReason: ReasonMissingCredentials},
		{name: "handshake", cfg: cfg, give: Delivery{Header: hdr("Validation-Token", "3c1a7b8e-0d2e-4f3a-9b1c-5e6f7a8b9c0d")}, want: Result{Via: ViaHandshake}},
		{name: "handshake with the verification token too", cfg: cfg, give: Delivery{Header: hdr("Validation-Token", "v", "Verification-Token", "rc-verify")}, want: Result{Via: ViaHandshake}},
		// A Validation-Token does not excuse a notification from its Verification-Token: only a
		// request with nothing to map is a handshake.
		{name: "validation token on a notification", cfg: cfg, give: Delivery{Header: hdr("Validation-Token", "v"), Body: []byte(body)}, wantReason: ReasonMissingCredentials},
		{name: "validation token and a wrong verification token", cfg: cfg, give: Delivery{Header: hdr("Validation-Token", "v", "Verification-Token", "x"), Body: []byte(body)}, wantReason: ReasonBadToken},
	})
}

func TestCheckContactCentres(t *testing.T) {
	tok := NewSecret([]byte("t"))
	tests := []struct {
		name string
		give Config
		want string // "" is usable
	}{
		{"five9 with token", Config{Source: Five9, URLToken: tok}, ""},
		{"five9 without token", Config{Source: Five9}, "five9 cannot sign; it needs a URL token"},
		{"five9 with a secret", Config{Source: Five9, URLToken: tok, Secrets: secrets("s")}, "only a URL token applies"},
		{"genesys with secret", Config{Source: Genesys, Secrets: secrets("s")}, ""},
		{"genesys without secret", Config{Source: Genesys}, "needs the shared secret sent in X-Ticketpulse-Secret"},
		{"genesys with a URL token", Config{Source: Genesys, Secrets: secrets("s"), URLToken: tok}, "a URL token does not apply"},
		{"ringcentral with token", Config{Source: RingCentral, Secrets: secrets("s")}, ""},
		{"ringcentral without token", Config{Source: RingCentral}, "needs the subscription's verification token"},
		{"ringcentral with tolerance", Config{Source: RingCentral, Secrets: secrets("s"), Tolerance: 1}, "a tolerance does not apply"},
		{"basic auth", Config{Source: Genesys, Secrets: secrets("s"), BasicAuth: &BasicAuth{User: "u", Password: tok}}, "Basic auth does not apply to genesys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Check()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check = %v, want ErrConfig with %q", err, tt.want)
			}
		})
	}
}

// FuzzVerifyContactCentres is FuzzVerify for the contact-centre sources: never a panic, only
// listed rejections, never a token quoted; a delivery is accepted on its token only when it
// presents the configured one, and as a handshake only when it has no body.
func FuzzVerifyContactCentres(f *testing.F) {
	const body = `{"event":"/restapi/v1.0/account/~/telephony/sessions"}`
	f.Add(fuzzToken, "", "", []byte(body))
	f.Add("", "v-1", "", []byte{})
	f.Add("", "", "token="+fuzzToken, []byte("event=call_accepted"))
	f.Add("\x00", "v", "token=&token="+fuzzToken, []byte("\xff"))
	configs := []Config{
		{Source: Five9, URLToken: NewSecret([]byte(fuzzToken))},
		{Source: Genesys, Secrets: secrets("other", fuzzToken)},
		{Source: RingCentral, Secrets: secrets(fuzzToken)},
	}
	f.Fuzz(func(t *testing.T, token, validation, rawQuery string, body []byte) {
		h := http.Header{}
		h.Set(GenesysSecretHeader, token)
		h.Set(RingCentralVerificationHead, token)
		h.Set(RingCentralValidationHead, validation)
		q, _ := url.ParseQuery(rawQuery)
		for i := range configs {
			cfg := &configs[i]
			res, err := testVerifier.Verify(cfg, Delivery{Header: h, Query: q, Body: body})
			if err != nil {
				rej, ok := errors.AsType[*Rejection](err)
				if !ok || !slices.Contains(Reasons, rej.Reason) || rej.Message == "" {
					t.Fatalf("%s: error %v", cfg.Source, err)
				}
				if strings.Contains(rej.Error(), fuzzToken) {
					t.Fatalf("%s: rejection quotes the token: %v", cfg.Source, rej)
				}
				continue
			}
			presented := h.Get(GenesysSecretHeader)
			if cfg.Source == Five9 {
				presented = q.Get(TokenParam)
			}
			switch res.Via {
			case ViaToken:
				if presented != fuzzToken && !(cfg.Source == Genesys && presented == "other") {
					t.Fatalf("%s: accepted the token %q", cfg.Source, presented)
				}
			case ViaHandshake:
				if cfg.Source != RingCentral || len(body) != 0 || h.Get(RingCentralValidationHead) == "" {
					t.Fatalf("%s: handshake accepted with a body of %d bytes", cfg.Source, len(body))
				}
			default:
				t.Fatalf("%s: accepted via %q", cfg.Source, res.Via)
			}
		}
	})
}
