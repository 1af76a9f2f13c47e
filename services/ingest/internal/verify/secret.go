package verify

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

const redacted = "[redacted]"

// Secret is key material: a signing secret, a URL token or a password. It never prints: fmt (every
// verb), slog and encoding/json all see "[redacted]". The bytes sit behind a pointer so that even
// fmt walking an unexported field of an enclosing struct prints an address, not the key.
type Secret struct{ k *key }

type key struct{ b []byte }

// NewSecret returns a Secret holding a copy of b.
func NewSecret(b []byte) Secret {
	if len(b) == 0 {
		return Secret{}
	}
	return Secret{&key{append([]byte(nil), b...)}}
}

// IsZero reports an unset (or empty) secret.
func (s Secret) IsZero() bool { return s.k == nil || len(s.k.b) == 0 }

func (s Secret) bytes() []byte {
	if s.k == nil {
		return nil
	}
	return s.k.b
}

// String returns "[redacted]", or "[unset]" for the zero Secret.
func (s Secret) String() string {
	if s.IsZero() {
		return "[unset]"
	}
	return redacted
}

// Format makes %x, %q, %#v and the rest print what String does.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the key out of JSON, YAML and text encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// webhookSecretPrefix starts every Standard Webhooks secret.
const webhookSecretPrefix = "whsec_"

// ErrWebhookSecret reports a generic-source secret that is not whsec_ followed by base64.
var ErrWebhookSecret = errors.New("not a Standard Webhooks secret (want whsec_ followed by base64)")

// ParseWebhookSecret decodes a Standard Webhooks secret into the HMAC key it names: the base64
// text after "whsec_". The error never quotes s.
func ParseWebhookSecret(s string) (Secret, error) {
	enc, ok := strings.CutPrefix(s, webhookSecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: missing the whsec_ prefix", ErrWebhookSecret)
	}
	k, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// CorruptInputError holds only an offset, so it is safe to show.
		return Secret{}, fmt.Errorf("%w: %v", ErrWebhookSecret, err)
	}
	if len(k) == 0 {
		return Secret{}, fmt.Errorf("%w: empty key", ErrWebhookSecret)
	}
	return NewSecret(k), nil
}
