package tenants

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// FuzzParse feeds arbitrary files to the loader. It must not panic; it must answer either a
// config whose every key and provider is usable, or Problems with real line numbers; and no
// hash it resolved may appear in an error unless the input itself holds that text.
func FuzzParse(f *testing.F) {
	seeds := []string{
		registryYAML,
		"tenants:\n  acme:\n    api_keys: [{name: ci, scopes: [events:write, kpis:read], hash: {env: HASH_A}, revoked: true}]\n",
		"operators:\n  api_keys: [{name: ops, hash: {env: HASH_B}}]\ntenants: {a: {api_keys: [{name: ops, scopes: kpis:read, hash: {env: HASH_B}}]}}\n",
		"tenants:\n  acme:\n    oidc: {issuer: https://login.example.com, audience: tp, tenant_claim: t, roles: {v: [kpis:read], s: [escalations:write]}}\n",
		"tenants:\n  acme:\n    oidc: {issuer: http://127.0.0.1:1/x, audience: tp, role_claim: g, roles: {\"\": [operator]}}\n",
		"tenants:\n  acme:\n    api_keys: [{name: a, scopes: [], hash: x}, {name: a, scopes: [kpis:read, kpis:read], hash: {env: A_KEY}}]\n",
		"defaults: {tolerance: 1m, rate_limit: {events_per_second: 1.5, burst: 2}}\ntenants:\n  a: {rate_limit: {burst: 3}, sources: {zendesk: {}}}\n",
		"tenants:\n  a: {api_keys: &k [{name: a, scopes: [kpis:read], hash: {file: a.hash}}]}\n  b: {api_keys: *k}\n",
		"operators:\n  oidc: {issuer: https://sso.example.com, audience: ops, roles: {admin: operator}}\ntenants:\n  a: {oidc: {issuer: https://sso.example.com, audience: tp, tenant_claim: t, roles: {v: kpis:read}}}\n",
		"tenants: [a\n", "---\n---\n", "", "~", "tenants:\n  acme: *x\n", "tenants:\n  \"\": {}\n  a.b: {}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.hash"), []byte(hashC+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	hashes := []string{hashA, hashB, hashC, hashA[7:], hashB[7:], hashC[7:]}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("tenants.yaml", dir, data, getenv(testEnv), SourcesParser[NoSources](nil))
		if err == nil {
			for id, tn := range cfg.Tenants {
				if !idtoken.ValidTenant(id) || tn.ID != id || tn.RateLimit.EventsPerSecond <= 0 || tn.RateLimit.Burst <= 0 {
					t.Fatalf("accepted tenant %q: %+v", id, tn)
				}
				if o := tn.OIDC; o != nil && (o.Tenant != id || o.Issuer == "" || o.Audience == "" || o.RoleClaim == "" || len(o.Roles) == 0) {
					t.Fatalf("accepted oidc %+v", o)
				}
			}
			if o := cfg.OperatorOIDC; o != nil {
				for _, scopes := range o.Roles {
					if !slices.Equal(scopes, []auth.Scope{auth.Operator}) {
						t.Fatalf("accepted operators' oidc %+v", o)
					}
				}
			}
			seen := map[auth.KeyHash]bool{}
			for _, k := range cfg.Keys() {
				operator := slices.Equal(k.Scopes, []auth.Scope{auth.Operator})
				if seen[k.Hash] || k.Name == "" || len(k.Scopes) == 0 || (k.Tenant == "") != operator ||
					(k.Tenant != "" && slices.Contains(k.Scopes, auth.Operator)) {
					t.Fatalf("accepted key %+v", k)
				}
				seen[k.Hash] = true
			}
			if _, err := auth.NewAuthenticator(cfg.Keys(), nil); err != nil {
				t.Fatalf("accepted keys the authenticator refuses: %v", err)
			}
			return
		}
		var probs Problems
		if !errors.As(err, &probs) || len(probs) == 0 || cfg != nil {
			t.Fatalf("error %T %v with config %v", err, err, cfg)
		}
		// YAML breaks lines at \r and a few Unicode separators too; any of them may count.
		lines := 2
		for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			lines += bytes.Count(data, []byte(br))
		}
		for _, p := range probs {
			if p.File != "tenants.yaml" || p.Line < 1 || p.Line > lines || p.Reason == "" {
				t.Fatalf("problem %+v (the input has %d lines)", p, lines-1)
			}
		}
		for _, h := range append(hashes, testEnv["A_KEY"]) {
			if strings.Contains(err.Error(), h) && !bytes.Contains(data, []byte(h)) {
				t.Fatalf("%q leaked into:\n%v", h, err)
			}
		}
	})
}
