package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func sign(t *testing.T, key *ecdsa.PrivateKey, kid string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"iss":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

func TestKeySetRotation(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var (
		mu      sync.Mutex
		served  = []jose.JSONWebKey{{Key: &k1.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}
		fetches atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: served})
	}))
	defer srv.Close()
	ks := &keySet{url: srv.URL}
	ctx := context.Background()
	if err := ks.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifySignature(ctx, sign(t, k1, "k1")); err != nil {
		t.Fatal(err)
	}

	// The provider rotates to k2. Until minKeyRefresh has passed, k2's tokens are refused
	// without a fetch; then one fetch picks k2 up.
	mu.Lock()
	served = append(served, jose.JSONWebKey{Key: &k2.PublicKey, KeyID: "k2", Algorithm: "ES256", Use: "sig"})
	mu.Unlock()
	if _, err := ks.VerifySignature(ctx, sign(t, k2, "k2")); err == nil || err.Error() != "signature not verified" {
		t.Fatalf("k2 before refresh is due: %v", err)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches before the refresh was due", n)
	}
	ks.mu.Lock()
	ks.fetched = time.Now().Add(-minKeyRefresh)
	ks.mu.Unlock()
	if _, err := ks.VerifySignature(ctx, sign(t, k2, "k2")); err != nil {
		t.Fatalf("k2 after refresh: %v", err)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestKeySetRefusals(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv, _ := json.Marshal(jose.JSONWebKey{Key: k1, KeyID: "priv", Algorithm: "ES256"})
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"not found", 404, `{}`, "key set fetch answered 404"},
		{"not json", 200, `<html>`, "key set is not a JWK set"},
		{"no keys", 200, `{"keys":[]}`, "key set has no usable signing key"},
		{"only unknown kinds and private keys", 200, `{"keys":[{"kty":"XYZ","kid":"a"},` + string(priv) + `]}`, "key set has no usable signing key"},
		{"larger than the cap", 200, `{"keys":["` + strings.Repeat("a", maxProviderBody) + `"]}`, "key set unreadable or too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			err := (&keySet{url: srv.URL}).refresh(context.Background())
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
