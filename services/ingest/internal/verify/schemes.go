package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Header names as the sources send them; http.Header.Get canonicalises, so case does not matter.
const (
	hZendeskSignature = "X-Zendesk-Webhook-Signature"
	hZendeskTimestamp = "X-Zendesk-Webhook-Signature-Timestamp"
	hChatwootSig      = "X-Chatwoot-Signature"
	hChatwootTime     = "X-Chatwoot-Timestamp"
	hChatwootDelivery = "X-Chatwoot-Delivery"
	hHelpScoutSig     = "X-HelpScout-Signature"
	hHubSignature     = "X-Hub-Signature"
	hWebhookID        = "webhook-id"
	hWebhookTimestamp = "webhook-timestamp"
	hWebhookSignature = "webhook-signature"
)

// macMatches reports whether mac is the HMAC of the concatenated parts under any of the secrets.
// The parts are fed to the hash one by one so the body is never copied.
func macMatches(secrets []Secret, newHash func() hash.Hash, mac []byte, parts ...[]byte) bool {
	for _, s := range secrets {
		if hmac.Equal(mac, sum(s, newHash, parts...)) {
			return true
		}
	}
	return false
}

func sum(s Secret, newHash func() hash.Hash, parts ...[]byte) []byte {
	m := hmac.New(newHash, s.bytes())
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// decodeBase64MAC decodes a base64 MAC of the given size; nil means malformed.
func decodeBase64MAC(s string, size int) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != size {
		return nil
	}
	return b
}

// decodeHexMAC decodes "<prefix><hex>" holding a MAC of the given size; nil means malformed.
func decodeHexMAC(s, prefix string, size int) []byte {
	h, ok := strings.CutPrefix(s, prefix)
	if !ok || len(h) != 2*size {
		return nil
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil
	}
	return b
}

// parseUnix reads decimal unix seconds. Signs, spaces and more than 12 digits (past year 33658,
// so milliseconds sent by mistake too) are refused rather than interpreted.
func parseUnix(s string) (time.Time, bool) {
	if s == "" || len(s) > 12 {
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
	return time.Unix(n, 0), true
}

// sameBytes compares a presented credential with a configured one in time independent of
// both: hashing first gives equal lengths, so not even the configured length leaks.
func sameBytes(presented string, want []byte) bool {
	a := sha256.Sum256([]byte(presented))
	b := sha256.Sum256(want)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// zendesk: X-Zendesk-Webhook-Signature = base64(HMAC-SHA256(secret, timestamp + body)), where
// timestamp is the raw X-Zendesk-Webhook-Signature-Timestamp value (RFC 3339).
func (v Verifier) zendesk(cfg *Config, d Delivery) (Result, *Rejection) {
	sig, ts := d.Header.Get(hZendeskSignature), d.Header.Get(hZendeskTimestamp)
	if sig == "" {
		return Result{}, reject(ReasonMissingSignature, "no %s header", hZendeskSignature)
	}
	if ts == "" {
		return Result{}, reject(ReasonMissingTimestamp, "no %s header", hZendeskTimestamp)
	}
	mac := decodeBase64MAC(sig, sha256.Size)
	if mac == nil {
		return Result{}, reject(ReasonMalformedSignature, "%s is not a base64 HMAC-SHA256", hZendeskSignature)
	}
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return Result{}, reject(ReasonBadTimestamp, "%s is not an RFC 3339 time", hZendeskTimestamp)
	}
	// The signature is checked before the clock so that stale_timestamp counts only authentic
	// deliveries that came late (replays, long retry queues), not noise.
	if !macMatches(cfg.Secrets, sha256.New, mac, []byte(ts), d.Body) {
		return Result{}, reject(ReasonBadSignature, "%s does not match the body", hZendeskSignature)
	}
	if rej := v.fresh(cfg, hZendeskTimestamp, t); rej != nil {
		return Result{}, rej
	}
	return Result{Via: ViaSignature}, nil
}

// chatwoot: X-Chatwoot-Signature = "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)),
// timestamp being X-Chatwoot-Timestamp in unix seconds. Installs too old to sign may instead be
// allowed a URL token, but a delivery that carries a signature must have a right one.
func (v Verifier) chatwoot(cfg *Config, d Delivery) (Result, *Rejection) {
	id := d.Header.Get(hChatwootDelivery)
	sig := d.Header.Get(hChatwootSig)
	if sig != "" && len(cfg.Secrets) > 0 {
		if rej := v.timestampedHexMAC(cfg, d, hChatwootSig, sig, hChatwootTime, "sha256="); rej != nil {
			return Result{}, rej
		}
		return Result{DeliveryID: id, Via: ViaSignature}, nil
	}
	if !cfg.URLToken.IsZero() {
		if !d.Query.Has(TokenParam) {
			return Result{}, reject(ReasonMissingSignature, "no %s header and no %s query parameter", hChatwootSig, TokenParam)
		}
		if !sameBytes(d.Query.Get(TokenParam), cfg.URLToken.bytes()) {
			return Result{}, reject(ReasonBadToken, "the %s query parameter is wrong", TokenParam)
		}
		return Result{DeliveryID: id, Via: ViaToken}, nil
	}
	// Only reachable without a signature: Check guarantees secrets when there is no URL token.
	if d.Query.Has(TokenParam) {
		return Result{}, reject(ReasonUnsignedNotAllowed, "this tenant accepts only signed chatwoot deliveries; set the webhook secret in chatwoot instead of a URL token")
	}
	return Result{}, reject(ReasonMissingSignature, "no %s header", hChatwootSig)
}

// freshdesk cannot sign, so it proves itself with a URL token or HTTP Basic auth. Each configured
// credential the request presents must be right, and at least one must be presented.
func freshdesk(cfg *Config, d Delivery) (Result, *Rejection) {
	hasBasic := cfg.BasicAuth != nil && d.Header.Get("Authorization") != ""
	hasToken := !cfg.URLToken.IsZero() && d.Query.Has(TokenParam)
	if !hasBasic && !hasToken {
		return Result{}, reject(ReasonMissingCredentials, "freshdesk deliveries need %s", freshdeskWants(cfg))
	}
	if hasBasic {
		user, pass, ok := (&http.Request{Header: d.Header}).BasicAuth()
		// Both halves are always compared, so the time does not tell which one was wrong.
		good := sameBytes(user, []byte(cfg.BasicAuth.User))
		good = sameBytes(pass, cfg.BasicAuth.Password.bytes()) && good
		if !ok || !good {
			return Result{}, reject(ReasonBadBasicAuth, "the Basic auth user or password is wrong")
		}
	}
	if hasToken && !sameBytes(d.Query.Get(TokenParam), cfg.URLToken.bytes()) {
		return Result{}, reject(ReasonBadToken, "the %s query parameter is wrong", TokenParam)
	}
	if hasBasic {
		return Result{Via: ViaBasicAuth}, nil
	}
	return Result{Via: ViaToken}, nil
}

func freshdeskWants(cfg *Config) string {
	switch {
	case cfg.BasicAuth != nil && !cfg.URLToken.IsZero():
		return "Basic auth or the " + TokenParam + " query parameter"
	case cfg.BasicAuth != nil:
		return "Basic auth"
	default:
		return "the " + TokenParam + " query parameter"
	}
}

// helpScout: X-HelpScout-Signature = base64(HMAC-SHA1(secret, body)). There is no timestamp, so
// replays are bounded only by deduplication downstream.
func helpScout(cfg *Config, d Delivery) (Result, *Rejection) {
	sig := d.Header.Get(hHelpScoutSig)
	if sig == "" {
		return Result{}, reject(ReasonMissingSignature, "no %s header", hHelpScoutSig)
	}
	mac := decodeBase64MAC(sig, sha1.Size)
	if mac == nil {
		return Result{}, reject(ReasonMalformedSignature, "%s is not a base64 HMAC-SHA1", hHelpScoutSig)
	}
	if !macMatches(cfg.Secrets, sha1.New, mac, d.Body) {
		return Result{}, reject(ReasonBadSignature, "%s does not match the body", hHelpScoutSig)
	}
	return Result{Via: ViaSignature}, nil
}

// hubSHA1 is the GitHub-style scheme Zammad and Intercom use:
// X-Hub-Signature = "sha1=" + hex(HMAC-SHA1(secret, body)), no timestamp.
func hubSHA1(cfg *Config, d Delivery) (Result, *Rejection) {
	sig := d.Header.Get(hHubSignature)
	if sig == "" {
		return Result{}, reject(ReasonMissingSignature, "no %s header", hHubSignature)
	}
	mac := decodeHexMAC(sig, "sha1=", sha1.Size)
	if mac == nil {
		return Result{}, reject(ReasonMalformedSignature, "%s is not sha1=<hex HMAC-SHA1>", hHubSignature)
	}
	if !macMatches(cfg.Secrets, sha1.New, mac, d.Body) {
		return Result{}, reject(ReasonBadSignature, "%s does not match the body", hHubSignature)
	}
	return Result{Via: ViaSignature}, nil
}

// standardWebhooks (generic): webhook-signature holds space-separated "v1,<base64
// HMAC-SHA256(key, id + "." + timestamp + "." + body)>" entries, several while the sender rotates.
// Entries of other versions (v1a is asymmetric) are skipped, as the specification asks.
func (v Verifier) standardWebhooks(cfg *Config, d Delivery) (Result, *Rejection) {
	id, ts, sigs := d.Header.Get(hWebhookID), d.Header.Get(hWebhookTimestamp), d.Header.Get(hWebhookSignature)
	if sigs == "" {
		return Result{}, reject(ReasonMissingSignature, "no %s header", hWebhookSignature)
	}
	if id == "" {
		return Result{}, reject(ReasonMissingID, "no %s header", hWebhookID)
	}
	if ts == "" {
		return Result{}, reject(ReasonMissingTimestamp, "no %s header", hWebhookTimestamp)
	}
	t, ok := parseUnix(ts)
	if !ok {
		return Result{}, reject(ReasonBadTimestamp, "%s is not unix seconds", hWebhookTimestamp)
	}
	want := make([][]byte, len(cfg.Secrets))
	for i, s := range cfg.Secrets {
		want[i] = sum(s, sha256.New, []byte(id), []byte("."), []byte(ts), []byte("."), d.Body)
	}
	wellFormed, matched := false, false
	for entry := range strings.FieldsSeq(sigs) {
		version, enc, _ := strings.Cut(entry, ",")
		if version != "v1" {
			continue
		}
		mac := decodeBase64MAC(enc, sha256.Size)
		if mac == nil {
			continue
		}
		wellFormed = true
		if slices.ContainsFunc(want, func(w []byte) bool { return hmac.Equal(mac, w) }) {
			matched = true
			break
		}
	}
	switch {
	case !wellFormed:
		return Result{}, reject(ReasonMalformedSignature, "%s holds no v1,<base64 HMAC-SHA256> entry", hWebhookSignature)
	case !matched:
		return Result{}, reject(ReasonBadSignature, "no %s entry matches the body", hWebhookSignature)
	}
	if rej := v.fresh(cfg, hWebhookTimestamp, t); rej != nil {
		return Result{}, rej
	}
	return Result{DeliveryID: id, Via: ViaSignature}, nil
}

// timestampedHexMAC checks sig, taken from sigHeader: prefix and the hex HMAC-SHA256 of
// "<timestamp>.<body>" under one of the secrets, the timestamp being tsHeader's unix seconds,
// which must also be fresh.
func (v Verifier) timestampedHexMAC(cfg *Config, d Delivery, sigHeader, sig, tsHeader, prefix string) *Rejection {
	ts := d.Header.Get(tsHeader)
	if ts == "" {
		return reject(ReasonMissingTimestamp, "no %s header", tsHeader)
	}
	mac := decodeHexMAC(sig, prefix, sha256.Size)
	if mac == nil {
		return reject(ReasonMalformedSignature, "%s is not %s<hex HMAC-SHA256>", sigHeader, prefix)
	}
	t, ok := parseUnix(ts)
	if !ok {
		return reject(ReasonBadTimestamp, "%s is not unix seconds", tsHeader)
	}
	if !macMatches(cfg.Secrets, sha256.New, mac, []byte(ts), []byte("."), d.Body) {
		return reject(ReasonBadSignature, "%s does not match the body", sigHeader)
	}
	return v.fresh(cfg, tsHeader, t)
}
