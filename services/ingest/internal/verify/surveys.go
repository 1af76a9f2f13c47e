package verify

import (
	"crypto/sha1"
	"crypto/sha256"
	"strings"
)

// The survey sources: their responses become satisfaction ratings (docs/surveys.md).
const (
	Typeform     = "typeform"
	SurveyMonkey = "surveymonkey"
	Qualtrics    = "qualtrics"
)

const (
	hTypeformSignature = "Typeform-Signature"
	hSMSignature       = "Sm-Signature"
	hSMAPIKey          = "Sm-Apikey"
)

// checkSurvey adds what makes a survey source's Config unusable.
func checkSurvey(c *Config, add func(string)) {
	signing := len(c.Secrets) > 0
	switch c.Source {
	case Typeform, SurveyMonkey:
		if !signing {
			add("needs a signing secret")
		}
		if !c.URLToken.IsZero() || c.BasicAuth != nil {
			add(c.Source + " deliveries are signed; a URL token or Basic auth does not apply")
		}
		if c.Source == SurveyMonkey && c.APIKey == "" {
			add("surveymonkey signs with its API key and API secret together; the API key is missing")
		}
	case Qualtrics:
		// Qualtrics event subscriptions post to a URL and nothing more: no signature, no
		// header of our choosing, so the URL is the credential.
		if c.URLToken.IsZero() {
			add("qualtrics cannot sign; it needs a URL token")
		}
		if signing || c.BasicAuth != nil {
			add("qualtrics cannot sign or send Basic auth; only a URL token applies")
		}
	}
}

// typeform: Typeform-Signature = "sha256=" + base64(HMAC-SHA256(secret, body)). There is no
// signed timestamp, so replays are bounded only by deduplication downstream (a response is one
// event however often it arrives).
func typeform(cfg *Config, d Delivery) (Result, *Rejection) {
	sig := d.Header.Get(hTypeformSignature)
	if sig == "" {
		return Result{}, reject(ReasonMissingSignature, "no %s header", hTypeformSignature)
	}
	enc, ok := strings.CutPrefix(sig, "sha256=")
	mac := decodeBase64MAC(enc, sha256.Size)
	if !ok || mac == nil {
		return Result{}, reject(ReasonMalformedSignature, "%s is not sha256=<base64 HMAC-SHA256>", hTypeformSignature)
	}
	if !macMatches(cfg.Secrets, sha256.New, mac, d.Body) {
		return Result{}, reject(ReasonBadSignature, "%s does not match the body", hTypeformSignature)
	}
	return Result{Via: ViaSignature}, nil
}

// surveyMonkey: Sm-Signature = base64(HMAC-SHA1(api_key + "&" + api_secret, body)); Sm-Apikey
// names the API key. Each configured secret is an API secret of the one configured API key.
func surveyMonkey(cfg *Config, d Delivery) (Result, *Rejection) {
	sig := d.Header.Get(hSMSignature)
	if sig == "" {
		return Result{}, reject(ReasonMissingSignature, "no %s header", hSMSignature)
	}
	mac := decodeBase64MAC(sig, sha1.Size)
	if mac == nil {
		return Result{}, reject(ReasonMalformedSignature, "%s is not a base64 HMAC-SHA1", hSMSignature)
	}
	// Only present keys are compared: the header is informational, the signature decides.
	if k := d.Header.Get(hSMAPIKey); k != "" && !sameBytes(k, []byte(cfg.APIKey)) {
		return Result{}, reject(ReasonBadSignature, "%s names another app than the one configured for this tenant", hSMAPIKey)
	}
	for _, s := range cfg.Secrets {
		key := NewSecret(append([]byte(cfg.APIKey+"&"), s.bytes()...))
		if macMatches([]Secret{key}, sha1.New, mac, d.Body) {
			return Result{Via: ViaSignature}, nil
		}
	}
	return Result{}, reject(ReasonBadSignature, "%s does not match the body", hSMSignature)
}

// qualtrics cannot sign, so the URL it posts to carries a token (?token=...), as Freshdesk's may.
func qualtrics(cfg *Config, d Delivery) (Result, *Rejection) {
	if !d.Query.Has(TokenParam) {
		return Result{}, reject(ReasonMissingCredentials, "qualtrics deliveries need the %s query parameter", TokenParam)
	}
	if !sameBytes(d.Query.Get(TokenParam), cfg.URLToken.bytes()) {
		return Result{}, reject(ReasonBadToken, "the %s query parameter is wrong", TokenParam)
	}
	return Result{Via: ViaToken}, nil
}
