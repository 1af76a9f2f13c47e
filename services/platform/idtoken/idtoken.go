// Package idtoken turns helpdesk ids into NATS subject tokens and Redis key parts, reversibly.
//
// Helpdesk ids are the helpdesk's own data (numbers, e-mail addresses, names in any script), so
// they are escaped, never rejected or altered: every byte outside [A-Za-z0-9_-@+=] becomes ~XX
// (upper-case hex). The result never contains '.', '*', '>', whitespace, ':' or a hash-tag brace,
// so it cannot inject a subject wildcard, a token separator or a Redis Cluster hash tag.
package idtoken

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

const hexDigits = "0123456789ABCDEF"

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '@' || c == '+' || c == '='
}

// Escape returns the token form of id. The empty id becomes "~" so that it is still one token.
func Escape(id string) string {
	if id == "" {
		return "~"
	}
	n := 0
	for i := 0; i < len(id); i++ {
		if !plain(id[i]) {
			n++
		}
	}
	if n == 0 {
		return id
	}
	var b strings.Builder
	b.Grow(len(id) + 2*n)
	for i := 0; i < len(id); i++ {
		c := id[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// ErrMalformed reports a token that Escape cannot have produced.
var ErrMalformed = errors.New("malformed id token")

// Unescape reverses Escape.
func Unescape(token string) (string, error) {
	if token == "~" {
		return "", nil
	}
	if !strings.Contains(token, "~") {
		for i := 0; i < len(token); i++ {
			if !plain(token[i]) {
				return "", fmt.Errorf("%w: byte %q at %d", ErrMalformed, token[i], i)
			}
		}
		return token, nil
	}
	out := make([]byte, 0, len(token))
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '~':
			if i+2 >= len(token) {
				return "", fmt.Errorf("%w: truncated escape at %d", ErrMalformed, i)
			}
			hi, lo := strings.IndexByte(hexDigits, token[i+1]), strings.IndexByte(hexDigits, token[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("%w: bad escape at %d", ErrMalformed, i)
			}
			v := byte(hi<<4 | lo)
			if plain(v) {
				return "", fmt.Errorf("%w: needless escape at %d", ErrMalformed, i)
			}
			out = append(out, v)
			i += 2
		case plain(c):
			out = append(out, c)
		default:
			return "", fmt.Errorf("%w: byte %q at %d", ErrMalformed, c, i)
		}
	}
	return string(out), nil
}

var tenantPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidTenant reports whether s is an acceptable tenant id: [a-z0-9][a-z0-9_-]{0,62}.
func ValidTenant(s string) bool { return tenantPattern.MatchString(s) }

// TenantRule describes ValidTenant for error messages.
const TenantRule = "must match [a-z0-9][a-z0-9_-]{0,62}"
