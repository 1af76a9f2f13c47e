package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func FuzzPeekIssuer(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(`{"iss":"https://id.example.com","sub":"u"}`)) + ".c2ln",
		"a.b.c", "..", enc([]byte(`{}`)) + "." + enc([]byte(`{"iss":7}`)) + ".x",
		"x." + enc([]byte(`{"iss":""}`)) + ".y", "x." + enc([]byte(`[1,2]`)) + ".y", "x." + enc([]byte(`{"iss":"\u0000"}`)) + ".y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		iss, err := peekIssuer(token)
		if err != nil {
			if iss != "" || !errors.Is(err, ErrMalformed) || err != errUnreadableToken {
				t.Fatalf("peekIssuer(%q) = %q, %v", token, iss, err)
			}
			return
		}
		if iss == "" || strings.Count(token, ".") != 2 || len(token) > MaxCredentialBytes {
			t.Fatalf("peekIssuer(%q) = %q", token, iss)
		}
	})
}
