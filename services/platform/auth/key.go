package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// An API key is KeyPrefix then 32 random bytes in unpadded base64url: 256 bits no one guesses,
// so a plain SHA-256 of the key is a safe thing to store (a slow password hash protects low-
// entropy secrets, which keys are not). The prefix lets secret scanners and people recognise one.
const (
	KeyPrefix  = "tpk_"
	keyRandom  = 32
	keyEncoded = 43 // base64.RawURLEncoding.EncodedLen(keyRandom)
	KeyLen     = len(KeyPrefix) + keyEncoded
)

// MaxCredentialBytes bounds the Authorization value read at all; ID tokens are a few KiB.
const MaxCredentialBytes = 8 << 10

// NewKey returns a fresh API key and its hash. The key is shown once, to whoever made it; only
// the hash is kept.
func NewKey() (string, KeyHash, error) {
	b := make([]byte, keyRandom)
	if _, err := rand.Read(b); err != nil {
		return "", KeyHash{}, fmt.Errorf("new api key: %w", err)
	}
	key := KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, HashKey(key), nil
}

// KeyNameRule describes ValidKeyName for error messages.
const KeyNameRule = "must match [a-z0-9][a-z0-9._-]{0,62}"

var keyName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidKeyName reports whether s can name a key: short and plain, since it appears in logs and
// as the by of acknowledgements.
func ValidKeyName(s string) bool { return keyName.MatchString(s) }

// KeyHash is the SHA-256 of an API key.
type KeyHash [sha256.Size]byte

const hashPrefix = "sha256:"

// HashKey returns the hash of key.
func HashKey(key string) KeyHash { return sha256.Sum256([]byte(key)) }

// String is the stored form, "sha256:" and 64 lower-case hex digits.
func (h KeyHash) String() string { return hashPrefix + hex.EncodeToString(h[:]) }

// Equal compares in constant time.
func (h KeyHash) Equal(o KeyHash) bool { return subtle.ConstantTimeCompare(h[:], o[:]) == 1 }

// ParseKeyHash reads the stored form String writes; surrounding white space (a trailing newline
// in a file) is ignored.
func ParseKeyHash(s string) (KeyHash, error) {
	s = strings.TrimSpace(s)
	var h KeyHash
	hexPart, ok := strings.CutPrefix(s, hashPrefix)
	if !ok {
		if strings.HasPrefix(s, KeyPrefix) {
			return h, fmt.Errorf("this is an API key, not its hash: store the sha256:... line tpctl apikey new printed, and never the key")
		}
		return h, fmt.Errorf("want sha256: and 64 hex digits")
	}
	if len(hexPart) != 2*sha256.Size {
		return h, fmt.Errorf("want sha256: and 64 hex digits, got %d characters after sha256:", len(hexPart))
	}
	if _, err := hex.Decode(h[:], []byte(hexPart)); err != nil {
		return KeyHash{}, fmt.Errorf("want sha256: and 64 hex digits: %v", err)
	}
	return h, nil
}

// Credential is the kind of credential a bearer token is.
type Credential int

// The credential kinds.
const (
	CredentialAPIKey Credential = iota + 1
	CredentialIDToken
)

// ParseBearer returns the token of an Authorization value "Bearer <token>" (RFC 6750; the scheme
// is case-insensitive) and what kind of credential it is. An empty value is ErrNoCredential;
// anything else that is not a well-formed API key or a JWS compact token is ErrMalformed.
func ParseBearer(authorization string) (token string, kind Credential, err error) {
	if authorization == "" {
		return "", 0, ErrNoCredential
	}
	if len(authorization) > MaxCredentialBytes {
		return "", 0, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxCredentialBytes)
	}
	scheme, rest, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", 0, fmt.Errorf("%w: want the Bearer scheme", ErrMalformed)
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" {
		return "", 0, fmt.Errorf("%w: empty bearer token", ErrMalformed)
	}
	if strings.HasPrefix(token, KeyPrefix) {
		if len(token) != KeyLen || !base64URL(token[len(KeyPrefix):]) {
			return "", 0, fmt.Errorf("%w: not a Ticketpulse API key (%s and %d base64url characters)", ErrMalformed, KeyPrefix, keyEncoded)
		}
		return token, CredentialAPIKey, nil
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", 0, fmt.Errorf("%w: neither an API key nor an ID token", ErrMalformed)
	}
	for _, p := range parts {
		if !base64URL(p) {
			return "", 0, fmt.Errorf("%w: neither an API key nor an ID token", ErrMalformed)
		}
	}
	return token, CredentialIDToken, nil
}

func base64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
