package auth_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		key, hash, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(key) != auth.KeyLen || !strings.HasPrefix(key, auth.KeyPrefix) {
			t.Fatalf("key %q: want %s and %d characters in all", key, auth.KeyPrefix, auth.KeyLen)
		}
		raw, err := base64.RawURLEncoding.DecodeString(key[len(auth.KeyPrefix):])
		if err != nil || len(raw) != 32 {
			t.Fatalf("key %q does not carry 32 base64url bytes: %v", key, err)
		}
		if hash != auth.HashKey(key) {
			t.Fatalf("NewKey's hash is not HashKey of its key")
		}
		if tok, kind, err := auth.ParseBearer("Bearer " + key); err != nil || tok != key || kind != auth.CredentialAPIKey {
			t.Fatalf("ParseBearer(new key) = %q, %v, %v", tok, kind, err)
		}
		if seen[key] {
			t.Fatalf("key %q made twice", key)
		}
		seen[key] = true
	}
}

func TestKeyHashRoundTrip(t *testing.T) {
	key, hash, _ := auth.NewKey()
	s := hash.String()
	if !strings.HasPrefix(s, "sha256:") || len(s) != len("sha256:")+64 || strings.ToLower(s) != s {
		t.Fatalf("stored form %q", s)
	}
	for _, give := range []string{s, "  " + s + "\n", s + "\r\n", "sha256:" + strings.ToUpper(s[7:])} {
		got, err := auth.ParseKeyHash(give)
		if err != nil || got != hash || !got.Equal(auth.HashKey(key)) {
			t.Errorf("ParseKeyHash(%q) = %v, %v", give, got, err)
		}
	}
	_, other, _ := auth.NewKey()
	if hash.Equal(other) {
		t.Error("two keys' hashes compare equal")
	}
}

func TestParseKeyHashErrors(t *testing.T) {
	key, _, _ := auth.NewKey()
	tests := []struct{ give, want string }{
		{"", "want sha256: and 64 hex digits"},
		{"md5:0123", "want sha256: and 64 hex digits"},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "want sha256: and 64 hex digits"},
		{key, "this is an API key, not its hash: store the sha256:... line tpctl apikey new printed, and never the key"},
		{"sha256:", "want sha256: and 64 hex digits, got 0 characters after sha256:"},
		{"sha256:" + strings.Repeat("a", 63), "want sha256: and 64 hex digits, got 63 characters after sha256:"},
		{"sha256:" + strings.Repeat("a", 65), "want sha256: and 64 hex digits, got 65 characters after sha256:"},
		{"sha256:" + strings.Repeat("g", 64), "want sha256: and 64 hex digits: encoding/hex: invalid byte: U+0067 'g'"},
		{"SHA256:" + strings.Repeat("a", 64), "want sha256: and 64 hex digits"},
	}
	for _, tt := range tests {
		got, err := auth.ParseKeyHash(tt.give)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseKeyHash(%q) = %v, %v; want error %q", tt.give, got, err, tt.want)
		}
		if got != (auth.KeyHash{}) {
			t.Errorf("ParseKeyHash(%q) returned a hash with its error", tt.give)
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("the error repeats the key")
		}
	}
}

func TestParseBearer(t *testing.T) {
	key, _, _ := auth.NewKey()
	const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"
	const (
		malformedScheme = "malformed credential: want the Bearer scheme"
		notKey          = "malformed credential: not a Ticketpulse API key (tpk_ and 43 base64url characters)"
		neither         = "malformed credential: neither an API key nor an ID token"
		empty           = "malformed credential: empty bearer token"
	)
	tests := []struct {
		name      string
		give      string
		wantToken string
		wantKind  auth.Credential
		wantErr   string
		wantIs    error
	}{
		{name: "api key", give: "Bearer " + key, wantToken: key, wantKind: auth.CredentialAPIKey},
		{name: "lower-case scheme", give: "bearer " + key, wantToken: key, wantKind: auth.CredentialAPIKey},
		{name: "odd-case scheme", give: "BeArEr " + key, wantToken: key, wantKind: auth.CredentialAPIKey},
		{name: "several spaces", give: "Bearer    " + key, wantToken: key, wantKind: auth.CredentialAPIKey},
		{name: "id token", give: "Bearer " + jwt, wantToken: jwt, wantKind: auth.CredentialIDToken},

		{name: "empty", give: "", wantErr: "no credential: send Authorization: Bearer <key or ID token>", wantIs: auth.ErrNoCredential},
		{name: "bare key", give: key, wantErr: malformedScheme, wantIs: auth.ErrMalformed},
		{name: "basic", give: "Basic dXNlcjpwYXNz", wantErr: malformedScheme, wantIs: auth.ErrMalformed},
		{name: "tab after scheme", give: "Bearer\t" + key, wantErr: malformedScheme, wantIs: auth.ErrMalformed},
		{name: "leading space", give: " Bearer " + key, wantErr: malformedScheme, wantIs: auth.ErrMalformed},
		{name: "scheme only", give: "Bearer", wantErr: malformedScheme, wantIs: auth.ErrMalformed},
		{name: "scheme and space", give: "Bearer ", wantErr: empty, wantIs: auth.ErrMalformed},
		{name: "scheme and spaces", give: "Bearer    ", wantErr: empty, wantIs: auth.ErrMalformed},
		{name: "key one short", give: "Bearer " + key[:len(key)-1], wantErr: notKey, wantIs: auth.ErrMalformed},
		{name: "key one long", give: "Bearer " + key + "A", wantErr: notKey, wantIs: auth.ErrMalformed},
		{name: "key with padding", give: "Bearer " + key[:len(key)-1] + "=", wantErr: notKey, wantIs: auth.ErrMalformed},
		{name: "key with +", give: "Bearer " + key[:len(key)-1] + "+", wantErr: notKey, wantIs: auth.ErrMalformed},
		{name: "key with trailing space", give: "Bearer " + key + " ", wantErr: notKey, wantIs: auth.ErrMalformed},
		{name: "prefix only", give: "Bearer tpk_", wantErr: notKey, wantIs: auth.ErrMalformed},
		{name: "two parts", give: "Bearer abc.def", wantErr: neither, wantIs: auth.ErrMalformed},
		{name: "four parts", give: "Bearer a.b.c.d", wantErr: neither, wantIs: auth.ErrMalformed},
		{name: "empty signature", give: "Bearer a.b.", wantErr: neither, wantIs: auth.ErrMalformed},
		{name: "empty header", give: "Bearer .b.c", wantErr: neither, wantIs: auth.ErrMalformed},
		{name: "jwt with slash", give: "Bearer a/b.c.d", wantErr: neither, wantIs: auth.ErrMalformed},
		{name: "random word", give: "Bearer hunter2", wantErr: neither, wantIs: auth.ErrMalformed},
		{name: "non-ascii", give: "Bearer ключ.b.c", wantErr: neither, wantIs: auth.ErrMalformed},
		{name: "too long", give: "Bearer " + strings.Repeat("a", auth.MaxCredentialBytes), wantErr: "malformed credential: longer than 8192 bytes", wantIs: auth.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, kind, err := auth.ParseBearer(tt.give)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, tt.wantIs) {
					t.Fatalf("got %q, %v, %v; want error %q", tok, kind, err, tt.wantErr)
				}
				if tok != "" || kind != 0 {
					t.Errorf("returned %q, %v with an error", tok, kind)
				}
				return
			}
			if err != nil || tok != tt.wantToken || kind != tt.wantKind {
				t.Fatalf("got %q, %v, %v; want %q, %v", tok, kind, err, tt.wantToken, tt.wantKind)
			}
		})
	}
}

var parseErrors = map[string]bool{
	"no credential: send Authorization: Bearer <key or ID token>":                        true,
	"malformed credential: longer than 8192 bytes":                                       true,
	"malformed credential: want the Bearer scheme":                                       true,
	"malformed credential: empty bearer token":                                           true,
	"malformed credential: not a Ticketpulse API key (tpk_ and 43 base64url characters)": true,
	"malformed credential: neither an API key nor an ID token":                           true,
}

func FuzzParseBearer(f *testing.F) {
	key, _, _ := auth.NewKey()
	for _, s := range []string{"", "Bearer " + key, "bearer  " + key, "Bearer eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln",
		"Basic dXNlcjpwYXNz", "Bearer tpk_", "Bearer a.b.c.d", "Bearer ", "Bearer\t" + key} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, give string) {
		tok, kind, err := auth.ParseBearer(give)
		if err != nil {
			if tok != "" || kind != 0 || !auth.Unauthenticated(err) {
				t.Fatalf("error %v came with %q, %v, or is not an authentication error", err, tok, kind)
			}
			// One of a few fixed texts, so nothing of the credential can leak through it.
			if !parseErrors[err.Error()] {
				t.Fatalf("unexpected error text %q", err)
			}
			return
		}
		if len(give) > auth.MaxCredentialBytes || !strings.HasSuffix(give, tok) || !strings.EqualFold(give[:7], "Bearer ") {
			t.Fatalf("accepted %q as %q", give, tok)
		}
		switch kind {
		case auth.CredentialAPIKey:
			if len(tok) != auth.KeyLen || !strings.HasPrefix(tok, auth.KeyPrefix) {
				t.Fatalf("accepted %q as an API key", tok)
			}
		case auth.CredentialIDToken:
			parts := strings.Split(tok, ".")
			if len(parts) != 3 || strings.HasPrefix(tok, auth.KeyPrefix) {
				t.Fatalf("accepted %q as an ID token", tok)
			}
			for _, p := range parts {
				if p == "" || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
					t.Fatalf("accepted %q as an ID token", tok)
				}
			}
		default:
			t.Fatalf("accepted %q as kind %v", tok, kind)
		}
		again, kind2, err := auth.ParseBearer("Bearer " + tok)
		if err != nil || again != tok || kind2 != kind {
			t.Fatalf("%q does not parse again: %q, %v, %v", tok, again, kind2, err)
		}
	})
}
