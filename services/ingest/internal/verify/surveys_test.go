package verify

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func typeformSig(key, body string) string { return "sha256=" + b64(mac(sha256.New, key, body)) }

func surveyMonkeySig(apiKey, apiSecret, body string) string {
	return b64(mac(sha1.New, apiKey+"&"+apiSecret, body))
}

func TestTypeform(t *testing.T) {
	const body = `{"event_id":"e1","event_type":"form_response"}`
	cfg := Config{Source: Typeform, Secrets: secrets("tf-new")}
	rotating := Config{Source: Typeform, Secrets: secrets("tf-new", "tf-old")}
	req := func(sig, sentBody string) Delivery {
		return Delivery{Header: hdr("Typeform-Signature", sig), Body: []byte(sentBody)}
	}
	tests := []verifyCase{
		{name: "good", cfg: cfg, give: req(typeformSig("tf-new", body), body), want: signed},
		{name: "rotation: old secret", cfg: rotating, give: req(typeformSig("tf-old", body), body), want: signed},
		{name: "wrong secret", cfg: cfg, give: req(typeformSig("tf-old", body), body), wantReason: ReasonBadSignature},
		{name: "tampered body", cfg: cfg, give: req(typeformSig("tf-new", body), body+" "), wantReason: ReasonBadSignature},
		{name: "missing signature", cfg: cfg, give: Delivery{Body: []byte(body)}, wantReason: ReasonMissingSignature},
		{name: "no sha256= prefix", cfg: cfg, give: req(b64(mac(sha256.New, "tf-new", body)), body), wantReason: ReasonMalformedSignature},
		{name: "hex instead of base64", cfg: cfg, give: req("sha256="+hex.EncodeToString(mac(sha256.New, "tf-new", body)), body), wantReason: ReasonMalformedSignature},
		{name: "SHA-1 length", cfg: cfg, give: req("sha256="+b64(mac(sha1.New, "tf-new", body)), body), wantReason: ReasonMalformedSignature},
		{name: "not base64", cfg: cfg, give: req("sha256=%%%", body), wantReason: ReasonMalformedSignature},
	}
	runCases(t, tests)
}

func TestSurveyMonkey(t *testing.T) {
	const body = `{"event_type":"response_completed","object_id":"1"}`
	cfg := Config{Source: SurveyMonkey, APIKey: "client-1", Secrets: secrets("sm-new")}
	rotating := Config{Source: SurveyMonkey, APIKey: "client-1", Secrets: secrets("sm-new", "sm-old")}
	req := func(sig, apiKey, sentBody string) Delivery {
		h := hdr("Sm-Signature", sig)
		if apiKey != "" {
			h.Set("Sm-Apikey", apiKey)
		}
		return Delivery{Header: h, Body: []byte(sentBody)}
	}
	tests := []verifyCase{
		{name: "good", cfg: cfg, give: req(surveyMonkeySig("client-1", "sm-new", body), "client-1", body), want: signed},
		{name: "good without Sm-Apikey", cfg: cfg, give: req(surveyMonkeySig("client-1", "sm-new", body), "", body), want: signed},
		{name: "rotation: old secret", cfg: rotating, give: req(surveyMonkeySig("client-1", "sm-old", body), "client-1", body), want: signed},
		{name: "secret alone is not the key", cfg: cfg, give: req(b64(mac(sha1.New, "sm-new", body)), "client-1", body), wantReason: ReasonBadSignature},
		{name: "other API key", cfg: cfg, give: req(surveyMonkeySig("client-2", "sm-new", body), "client-2", body), wantReason: ReasonBadSignature},
		{name: "tampered body", cfg: cfg, give: req(surveyMonkeySig("client-1", "sm-new", body), "client-1", body[1:]), wantReason: ReasonBadSignature},
		{name: "missing signature", cfg: cfg, give: req("", "client-1", body), wantReason: ReasonMissingSignature},
		{name: "SHA-256 length", cfg: cfg, give: req(b64(mac(sha256.New, "client-1&sm-new", body)), "client-1", body), wantReason: ReasonMalformedSignature},
		{name: "not base64", cfg: cfg, give: req("%%%", "client-1", body), wantReason: ReasonMalformedSignature},
	}
	runCases(t, tests)
}

func TestQualtrics(t *testing.T) {
	const body = `Topic=surveyengine.completedResponse.SV_1&MSG=%7B%7D`
	cfg := Config{Source: Qualtrics, URLToken: NewSecret([]byte("q-token"))}
	req := func(q url.Values) Delivery {
		return Delivery{Header: hdr("Content-Type", "application/x-www-form-urlencoded"), Query: q, Body: []byte(body)}
	}
	tests := []verifyCase{
		{name: "good", cfg: cfg, give: req(url.Values{"token": {"q-token"}}), want: Result{Via: ViaToken}},
		{name: "wrong token", cfg: cfg, give: req(url.Values{"token": {"q-tokem"}}), wantReason: ReasonBadToken},
		{name: "empty token", cfg: cfg, give: req(url.Values{"token": {""}}), wantReason: ReasonBadToken},
		{name: "no token", cfg: cfg, give: req(nil), wantReason: ReasonMissingCredentials},
		{name: "token in a header is not read", cfg: cfg, give: Delivery{Header: hdr("Token", "q-token"), Body: []byte(body)}, wantReason: ReasonMissingCredentials},
	}
	runCases(t, tests)
}

// TestSurveyFixedVectors checks signatures computed outside Go, with openssl:
//
//	printf '%s' "$BODY" | openssl dgst -sha256 -hmac 'tf-secret-2026' -binary | base64
//	printf '%s' "$BODY" | openssl dgst -sha1 -hmac 'sm-client-id-9f2&sm-api-secret-2026' -binary | base64
func TestSurveyFixedVectors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		give Delivery
	}{
		{
			name: "typeform",
			cfg:  Config{Source: Typeform, Secrets: secrets("tf-secret-2026")},
			give: Delivery{Header: hdr("Typeform-Signature", "sha256=bdWWq2FSNX2q43LB/00EZzMmxpEmDwKbOQVeEa5lRfc="),
				Body: []byte(`{"event_id":"01JD0000000000000000000001","event_type":"form_response","form_response":{"form_id":"lT4Z3j","token":"a3a12ec67a1365927098a606107fac15"}}`)},
		},
		{
			name: "surveymonkey",
			cfg:  Config{Source: SurveyMonkey, APIKey: "sm-client-id-9f2", Secrets: secrets("sm-api-secret-2026")},
			give: Delivery{Header: hdr("Sm-Signature", "dmZpfq4YeduRzO4SQPy2mMMEAz0=", "Sm-Apikey", "sm-client-id-9f2"),
				Body: []byte(`{"event_type":"response_completed","object_type":"response","object_id":"114233045","resources":{"survey_id":"405712311","respondent_id":"114233045"}}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, reason := outcome(t, testVerifier, &tt.cfg, tt.give)
			if res != signed {
				t.Fatalf("Verify = %+v, %q; want accepted on its signature", res, reason)
			}
			tt.give.Body = append(tt.give.Body, ' ')
			if _, reason := outcome(t, testVerifier, &tt.cfg, tt.give); reason != ReasonBadSignature {
				t.Errorf("one more byte: reason %q, want %q", reason, ReasonBadSignature)
			}
		})
	}
}

func TestCheckSurveys(t *testing.T) {
	tok := NewSecret([]byte("t"))
	tests := []struct {
		name string
		give Config
		want string // "" for a usable config
	}{
		{name: "typeform", give: Config{Source: Typeform, Secrets: secrets("s")}},
		{name: "typeform without secret", give: Config{Source: Typeform}, want: "needs a signing secret"},
		{name: "typeform with a token", give: Config{Source: Typeform, Secrets: secrets("s"), URLToken: tok}, want: "a URL token or Basic auth does not apply"},
		{name: "surveymonkey", give: Config{Source: SurveyMonkey, APIKey: "k", Secrets: secrets("s")}},
		{name: "surveymonkey without API key", give: Config{Source: SurveyMonkey, Secrets: secrets("s")}, want: "the API key is missing"},
		{name: "API key elsewhere", give: Config{Source: Typeform, APIKey: "k", Secrets: secrets("s")}, want: "an API key applies to surveymonkey only"},
		{name: "qualtrics", give: Config{Source: Qualtrics, URLToken: tok}},
		{name: "qualtrics without token", give: Config{Source: Qualtrics}, want: "qualtrics cannot sign; it needs a URL token"},
		{name: "qualtrics with secrets", give: Config{Source: Qualtrics, URLToken: tok, Secrets: secrets("s")}, want: "only a URL token applies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Check()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check = %v, want nil", err)
			case tt.want != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check = %v, want ErrConfig with %q", err, tt.want)
			}
		})
	}
}

// FuzzVerifySurveys is FuzzVerify for the survey sources: never a panic, only listed
// rejections, never a secret quoted, and a signature stops matching when the body changes.
func FuzzVerifySurveys(f *testing.F) {
	const body = `{"event_id":"e"}`
	f.Add(typeformSig(fuzzKey, body), "", "", []byte(body))
	f.Add(surveyMonkeySig("client", fuzzKey, body), "client", "", []byte(body))
	f.Add("", "", "token="+fuzzToken, []byte("Topic=x&MSG=%7B%7D"))
	f.Add("sha256=", "\x00", "token=&token=x", []byte("\xff"))
	configs := []Config{
		{Source: Typeform, Secrets: secrets("other", fuzzKey)},
		{Source: SurveyMonkey, APIKey: "client", Secrets: secrets(fuzzKey)},
		{Source: Qualtrics, URLToken: NewSecret([]byte(fuzzToken))},
	}
	f.Fuzz(func(t *testing.T, sig, apiKey, rawQuery string, body []byte) {
		h := http.Header{}
		h.Set(hTypeformSignature, sig)
		h.Set(hSMSignature, strings.TrimPrefix(sig, "sha256="))
		h.Set(hSMAPIKey, apiKey)
		q, _ := url.ParseQuery(rawQuery)
		for i := range configs {
			cfg := &configs[i]
			d := Delivery{Header: h, Query: q, Body: body}
			res, err := testVerifier.Verify(cfg, d)
			if err != nil {
				rej, ok := errors.AsType[*Rejection](err)
				if !ok || !slices.Contains(Reasons, rej.Reason) || rej.Message == "" {
					t.Fatalf("%s: error %v", cfg.Source, err)
				}
				if strings.Contains(rej.Error(), fuzzKey) || strings.Contains(rej.Error(), fuzzToken) {
					t.Fatalf("%s: rejection quotes a secret: %v", cfg.Source, rej)
				}
				continue
			}
			if res.Via != ViaSignature {
				continue
			}
			d.Body = append(slices.Clone(body), '!')
			if _, err := testVerifier.Verify(cfg, d); err == nil {
				t.Fatalf("%s: signature still accepted after the body changed", cfg.Source)
			}
		}
	})
}
