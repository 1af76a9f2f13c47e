package tenants

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// Key hashes of the tests: fixed, so messages can be compared, and each one distinct.
var (
	hashA = "sha256:" + strings.Repeat("a1", 32)
	hashB = "sha256:" + strings.Repeat("b2", 32)
	hashC = "sha256:" + strings.Repeat("c3", 32)
)

var testEnv = map[string]string{
	"HASH_A":    hashA,
	"HASH_B":    hashB,
	"HASH_C":    hashC,
	"HASH_A2":   strings.ToUpper(hashA[7:]), // bare hex, no prefix
	"A_KEY":     auth.KeyPrefix + strings.Repeat("k", 43),
	"SHORT":     "sha256:abcdef0123",
	"NOT_HEX":   "sha256:" + strings.Repeat("zz", 32),
	"EMPTY":     "",
	"HASH_A_WS": "  " + hashA + "\n",
	"HASH_D_WS": "sha256:" + strings.Repeat("d4", 32) + " \n",
}

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// writeTenants writes the tenants file and any secret files into a fresh directory.
func writeTenants(t *testing.T, give string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(path, []byte(give), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustHash(t *testing.T, s string) auth.KeyHash {
	t.Helper()
	h, err := auth.ParseKeyHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLoadValid(t *testing.T) {
	def := RateLimit{EventsPerSecond: DefaultEventsPerSecond, Burst: DefaultBurst}
	type want struct {
		tenants   map[string]RateLimit
		operators []auth.Key
		keys      []auth.Key // Config.Keys: operators, then tenants by id
		providers []auth.OIDCConfig
	}
	tests := []struct {
		name  string
		give  string
		files map[string]string
		want  want
	}{
		{
			name: "a tenant with nothing set",
			give: "tenants:\n  acme:\n",
			want: want{tenants: map[string]RateLimit{"acme": def}},
		},
		{
			name: "defaults, and sources accepted unread without a parser",
			give: "defaults: {tolerance: [not, read], rate_limit: {burst: 5}}\ntenants:\n  acme:\n    sources: {jira: {anything: 1}}\n  globex: {rate_limit: {events_per_second: 2}}\n",
			want: want{tenants: map[string]RateLimit{
				"acme":   {EventsPerSecond: DefaultEventsPerSecond, Burst: 5},
				"globex": {EventsPerSecond: 2, Burst: 5},
			}},
		},
		{
			name: "keys by env and file, revoked, a single scope, the same name in two tenants",
			give: `tenants:
  acme:
    api_keys:
      - name: ci-2026-12
        scopes: [events:write, kpis:read]
        hash: {env: HASH_A}
      - {name: ci-2026.06, scopes: kpis:read, hash: {file: secrets/acme.hash}, revoked: true}
      - {name: off, scopes: [escalations:read], hash: {env: HASH_D_WS}, revoked: false}
  globex:
    api_keys: [{name: ci-2026-12, scopes: [notifications:test, notifications:read, escalations:write], hash: {env: HASH_C}}]
  initech:
    api_keys: []
  umbrella:
    api_keys:
`,
			files: map[string]string{"secrets/acme.hash": hashB + "\n"},
			want: want{
				tenants: map[string]RateLimit{"acme": def, "globex": def, "initech": def, "umbrella": def},
				keys: []auth.Key{
					{Name: "ci-2026-12", Tenant: "acme", Scopes: []auth.Scope{auth.EventsWrite, auth.KPIsRead}},
					{Name: "ci-2026.06", Tenant: "acme", Scopes: []auth.Scope{auth.KPIsRead}, Revoked: true},
					{Name: "off", Tenant: "acme", Scopes: []auth.Scope{auth.EscalationsRead}},
					{Name: "ci-2026-12", Tenant: "globex", Scopes: []auth.Scope{auth.NotificationsTest, auth.NotificationsRead, auth.EscalationsWrite}},
				},
			},
		},
		{
			name:  "operators",
			give:  "operators:\n  api_keys:\n    - {name: ops, hash: {file: ops.hash}}\n    - {name: ops-old, hash: {env: HASH_C}, revoked: true}\ntenants:\n  acme: {api_keys: [{name: ops, scopes: [kpis:read], hash: {env: HASH_A}}]}\n",
			files: map[string]string{"ops.hash": hashB},
			want: want{
				tenants: map[string]RateLimit{"acme": def},
				operators: []auth.Key{
					{Name: "ops", Scopes: []auth.Scope{auth.Operator}},
					{Name: "ops-old", Scopes: []auth.Scope{auth.Operator}, Revoked: true},
				},
				keys: []auth.Key{
					{Name: "ops", Scopes: []auth.Scope{auth.Operator}},
					{Name: "ops-old", Scopes: []auth.Scope{auth.Operator}, Revoked: true},
					{Name: "ops", Tenant: "acme", Scopes: []auth.Scope{auth.KPIsRead}},
				},
			},
		},
		{
			name: "operators without keys",
			give: "operators:\ntenants: {acme: {}}\n",
			want: want{tenants: map[string]RateLimit{"acme": def}},
		},
		{
			name: "oidc, every setting and the defaults",
			give: `tenants:
  acme:
    oidc:
      issuer: https://login.example.com
      audience: ticketpulse-console
      tenant_claim: tenant
      role_claim: groups
      roles: {supervisor: [kpis:read, escalations:read, escalations:write, notifications:read], viewer: kpis:read}
  globex:
    oidc: {issuer: "http://127.0.0.1:5556/dex", audience: tp, roles: {viewer: [kpis:read]}}
  initech:
    oidc: {issuer: "http://localhost:8080/realms/initech/", audience: "42", roles: {"agents": [escalations:read]}}
`,
			want: want{
				tenants: map[string]RateLimit{"acme": def, "globex": def, "initech": def},
				providers: []auth.OIDCConfig{
					{Tenant: "acme", Issuer: "https://login.example.com", Audience: "ticketpulse-console", TenantClaim: "tenant", RoleClaim: "groups",
						Roles: map[string][]auth.Scope{
							"supervisor": {auth.KPIsRead, auth.EscalationsRead, auth.EscalationsWrite, auth.NotificationsRead},
							"viewer":     {auth.KPIsRead},
						}},
					{Tenant: "globex", Issuer: "http://127.0.0.1:5556/dex", Audience: "tp", RoleClaim: "roles",
						Roles: map[string][]auth.Scope{"viewer": {auth.KPIsRead}}},
					{Tenant: "initech", Issuer: "http://localhost:8080/realms/initech/", Audience: "42", RoleClaim: "roles",
						Roles: map[string][]auth.Scope{"agents": {auth.EscalationsRead}}},
				},
			},
		},
		{
			name: "operators' oidc, and one issuer for two tenants told apart by a claim",
			give: `operators:
  oidc: {issuer: https://sso.example.com, audience: tp-ops, roles: {admin: operator}}
tenants:
  a: {oidc: {issuer: https://sso.example.com, audience: tp, tenant_claim: org, roles: {v: [kpis:read]}}}
  b: {oidc: {issuer: https://sso.example.com, audience: tp, tenant_claim: org, roles: {v: [kpis:read]}}}
`,
			want: want{
				tenants: map[string]RateLimit{"a": def, "b": def},
				providers: []auth.OIDCConfig{
					{Issuer: "https://sso.example.com", Audience: "tp-ops", RoleClaim: "roles", Roles: map[string][]auth.Scope{"admin": {auth.Operator}}},
					{Tenant: "a", Issuer: "https://sso.example.com", Audience: "tp", TenantClaim: "org", RoleClaim: "roles", Roles: map[string][]auth.Scope{"v": {auth.KPIsRead}}},
					{Tenant: "b", Issuer: "https://sso.example.com", Audience: "tp", TenantClaim: "org", RoleClaim: "roles", Roles: map[string][]auth.Scope{"v": {auth.KPIsRead}}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(writeTenants(t, tt.give, tt.files), getenv(testEnv), SourcesParser[NoSources](nil))
			if err != nil {
				t.Fatal(err)
			}
			rates := map[string]RateLimit{}
			for id, tn := range cfg.Tenants {
				if tn.ID != id {
					t.Errorf("tenant %q has id %q", id, tn.ID)
				}
				rates[id] = tn.RateLimit
			}
			if !reflect.DeepEqual(rates, tt.want.tenants) {
				t.Errorf("tenants %v, want %v", rates, tt.want.tenants)
			}
			// Hashes are compared apart: the order of the file says which is which.
			keys := cfg.Keys()
			for i := range keys {
				keys[i].Hash = auth.KeyHash{}
			}
			if !reflect.DeepEqual(keys, tt.want.keys) {
				t.Errorf("keys\n%+v\nwant\n%+v", keys, tt.want.keys)
			}
			ops := append([]auth.Key(nil), cfg.Operators...)
			for i := range ops {
				ops[i].Hash = auth.KeyHash{}
			}
			if !reflect.DeepEqual(ops, tt.want.operators) {
				t.Errorf("operators %+v, want %+v", ops, tt.want.operators)
			}
			if got := cfg.Providers(); !reflect.DeepEqual(got, tt.want.providers) {
				t.Errorf("providers\n%+v\nwant\n%+v", got, tt.want.providers)
			}
			for _, tn := range cfg.Tenants {
				if (tn.OIDC == nil) != (len(tt.want.providers) == 0) {
					t.Errorf("tenant %s: OIDC %+v", tn.ID, tn.OIDC)
				}
			}
		})
	}
}

// TestKeyHashes checks each reference reached the right key.
func TestKeyHashes(t *testing.T) {
	give := `operators:
  api_keys: [{name: ops, hash: {file: /ABS/ops.hash}}]
tenants:
  acme:
    api_keys:
      - {name: a, scopes: [kpis:read], hash: {env: HASH_A_WS}}
      - {name: b, scopes: [kpis:read], hash: {file: b.hash}}
      - {name: c, scopes: [kpis:read], hash: {file: sub/c.hash}}
`
	abs := t.TempDir()
	opsHash := "sha256:" + strings.Repeat("d4", 32)
	if err := os.WriteFile(filepath.Join(abs, "ops.hash"), []byte(opsHash+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeTenants(t, strings.Replace(give, "/ABS", abs, 1), map[string]string{"b.hash": hashB + "\n", "sub/c.hash": hashC})
	cfg, err := Load(path, getenv(testEnv), SourcesParser[NoSources](nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ops": opsHash, "a": hashA, "b": hashB, "c": hashC}
	for _, k := range cfg.Keys() {
		if got := k.Hash.String(); got != want[k.Name] {
			t.Errorf("key %s: hash %s, want %s", k.Name, got, want[k.Name])
		}
	}
	if n := len(cfg.Keys()); n != 4 {
		t.Errorf("%d keys, want 4", n)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name  string
		give  string
		files map[string]string
		want  string // $F is the tenants file, $D its directory
	}{
		{
			name: "unknown top-level key",
			give: "operator:\n  api_keys: []\ntenants: {acme: {}}\n",
			want: "$F:1: unknown key \"operator\" (allowed: defaults, operators, tenants)",
		},
		{
			name: "no tenants, only operators",
			give: "operators:\n  api_keys: [{name: ops, hash: {env: HASH_A}}]\n",
			want: "$F:1: missing tenants: (the tenants and their webhook sources)",
		},
		{
			name: "unknown tenant and operators keys",
			give: "operators: {apikeys: []}\ntenants:\n  acme:\n    apikeys: []\n",
			want: "$F:1: operators: unknown key \"apikeys\" (allowed: api_keys, oidc)\n" +
				"$F:4: tenants.acme: unknown key \"apikeys\" (allowed: rate_limit, api_keys, oidc, sources)",
		},
		{
			name: "api_keys not a list, an entry not a mapping, an unknown key",
			give: "tenants:\n  acme:\n    api_keys: {name: ci}\n  globex:\n    api_keys:\n      - ci\n      - {name: ci, scopes: [kpis:read], hash: {env: HASH_A}, expires: 2027-01-01}\n",
			want: "$F:3: tenants.acme.api_keys: want a list of api keys ({name, scopes, hash}), not a mapping\n" +
				"$F:6: tenants.globex.api_keys[0]: want a mapping, not a single value\n" +
				"$F:7: tenants.globex.api_keys[1]: unknown key \"expires\" (allowed: name, scopes, hash, revoked)",
		},
		{
			name: "missing name, scopes and hash",
			give: "tenants:\n  acme:\n    api_keys:\n      - {}\n      - revoked: true\n",
			want: "$F:4: tenants.acme.api_keys[0]: missing name:\n" +
				"$F:4: tenants.acme.api_keys[0]: missing scopes: (any of events:write, kpis:read, escalations:read, escalations:write, notifications:read, notifications:test)\n" +
				"$F:4: tenants.acme.api_keys[0]: missing hash: ({env: NAME} or {file: PATH} holding the key's sha256:... hash)\n" +
				"$F:5: tenants.acme.api_keys[1]: missing name:\n" +
				"$F:5: tenants.acme.api_keys[1]: missing scopes: (any of events:write, kpis:read, escalations:read, escalations:write, notifications:read, notifications:test)\n" +
				"$F:5: tenants.acme.api_keys[1]: missing hash: ({env: NAME} or {file: PATH} holding the key's sha256:... hash)",
		},
		{
			name: "bad and duplicate key names",
			give: `tenants:
  acme:
    api_keys:
      - {name: CI Key, scopes: [kpis:read], hash: {env: HASH_A}}
      - {name: ci/1, scopes: [kpis:read], hash: {env: HASH_B}}
      - {name: ci, scopes: [kpis:read], hash: {env: HASH_C}}
      - {name: ci, scopes: [kpis:read], hash: {file: d.hash}}
      - {name: [ci], scopes: [kpis:read], hash: {file: e.hash}}
`,
			files: map[string]string{"d.hash": "sha256:" + strings.Repeat("d4", 32), "e.hash": "sha256:" + strings.Repeat("e5", 32)},
			want: "$F:4: tenants.acme.api_keys[0].name: \"CI Key\" must match [a-z0-9][a-z0-9._-]{0,62}\n" +
				"$F:5: tenants.acme.api_keys[1].name: \"ci/1\" must match [a-z0-9][a-z0-9._-]{0,62}\n" +
				"$F:7: tenants.acme.api_keys[3].name: duplicate name \"ci\" (first on line 6)\n" +
				"$F:8: tenants.acme.api_keys[4].name: want a non-empty string, not a list",
		},
		{
			name: "scopes empty, null, unknown, operator, repeated, not strings",
			give: `tenants:
  acme:
    api_keys:
      - {name: a, scopes: [], hash: {env: HASH_A}}
      - {name: b, scopes: , hash: {env: HASH_B}}
      - {name: c, scopes: [kpi:read, operator, kpis:read, kpis:read, {x: 1}], hash: {env: HASH_C}}
`,
			want: "$F:4: tenants.acme.api_keys[0].scopes: want at least one scope, not an empty list\n" +
				"$F:5: tenants.acme.api_keys[1].scopes: want a single value or a list, not nothing\n" +
				"$F:6: tenants.acme.api_keys[2].scopes[0]: unknown scope \"kpi:read\" (want one of events:write, kpis:read, escalations:read, escalations:write, notifications:read, notifications:test)\n" +
				"$F:6: tenants.acme.api_keys[2].scopes[1]: operator spans every tenant; give it to a key under operators: instead\n" +
				"$F:6: tenants.acme.api_keys[2].scopes[3]: \"kpis:read\" is listed twice (first on line 6)\n" +
				"$F:6: tenants.acme.api_keys[2].scopes[4]: want a non-empty string, not a mapping",
		},
		{
			name: "hash written in the file, unset, empty, a key, malformed",
			give: `tenants:
  acme:
    api_keys:
      - {name: a, scopes: [kpis:read], hash: ` + hashA + `}
      - {name: b, scopes: [kpis:read], hash: {value: ` + hashB + `}}
      - {name: c, scopes: [kpis:read], hash: {env: ACME_HASH}}
      - {name: d, scopes: [kpis:read], hash: {env: EMPTY}}
      - {name: e, scopes: [kpis:read], hash: {env: A_KEY}}
      - {name: f, scopes: [kpis:read], hash: {env: SHORT}}
      - {name: g, scopes: [kpis:read], hash: {env: HASH_A2}}
      - {name: h, scopes: [kpis:read], hash: {file: key.txt}}
      - {name: i, scopes: [kpis:read], hash: {file: missing.hash}}
      - {name: j, scopes: [kpis:read], hash: {env: NOT_HEX}}
`,
			files: map[string]string{"key.txt": testEnv["A_KEY"] + "\n"},
			want: "$F:4: tenants.acme.api_keys[0].hash: secrets are never written in this file; use {env: NAME} or {file: PATH}\n" +
				"$F:5: tenants.acme.api_keys[1].hash: secrets are never written in this file; use {env: NAME} or {file: PATH}\n" +
				"$F:6: tenants.acme.api_keys[2].hash.env: environment variable ACME_HASH is unset or empty\n" +
				"$F:7: tenants.acme.api_keys[3].hash.env: environment variable EMPTY is unset or empty\n" +
				"$F:8: tenants.acme.api_keys[4].hash: environment variable A_KEY: this is an API key, not its hash: store the sha256:... line tpctl apikey new printed, and never the key\n" +
				"$F:9: tenants.acme.api_keys[5].hash: environment variable SHORT: want sha256: and 64 hex digits, got 10 characters after sha256:\n" +
				"$F:10: tenants.acme.api_keys[6].hash: environment variable HASH_A2: want sha256: and 64 hex digits\n" +
				"$F:11: tenants.acme.api_keys[7].hash: file $D/key.txt: this is an API key, not its hash: store the sha256:... line tpctl apikey new printed, and never the key\n" +
				"$F:12: tenants.acme.api_keys[8].hash.file: reading secret file $D/missing.hash: no such file or directory\n" +
				"$F:13: tenants.acme.api_keys[9].hash: environment variable NOT_HEX: want sha256: and 64 hex digits: encoding/hex: invalid byte: U+007A 'z'",
		},
		{
			name: "the same hash twice: in a tenant, across tenants, and an operator's",
			give: `operators:
  api_keys: [{name: ops, hash: {env: HASH_A}}]
tenants:
  acme:
    api_keys:
      - {name: a, scopes: [kpis:read], hash: {env: HASH_B}}
      - {name: b, scopes: [kpis:read], hash: {file: b.hash}}
      - {name: c, scopes: [kpis:read], hash: {env: HASH_A_WS}}
  globex:
    api_keys: [{name: a, scopes: [kpis:read], hash: {env: HASH_B}}]
`,
			files: map[string]string{"b.hash": hashB + "\n"},
			want: "$F:7: tenants.acme.api_keys[1].hash: file $D/b.hash holds the same hash as tenants.acme.api_keys[0].hash (line 6); every key must be its own\n" +
				"$F:8: tenants.acme.api_keys[2].hash: environment variable HASH_A_WS holds the same hash as operators.api_keys[0].hash (line 2); every key must be its own\n" +
				"$F:10: tenants.globex.api_keys[0].hash: environment variable HASH_B holds the same hash as tenants.acme.api_keys[0].hash (line 6); every key must be its own",
		},
		{
			name: "revoked not a boolean",
			give: "tenants:\n  acme:\n    api_keys:\n      - {name: a, scopes: [kpis:read], hash: {env: HASH_A}, revoked: 1}\n      - {name: b, scopes: [kpis:read], hash: {env: HASH_B}, revoked: \"true\"}\n",
			want: "$F:4: tenants.acme.api_keys[0].revoked: want true or false, not \"1\"\n" +
				"$F:5: tenants.acme.api_keys[1].revoked: want true or false, not \"true\"",
		},
		{
			name: "operator keys take no scopes, and have names",
			give: "operators:\n  api_keys:\n    - {name: ops, scopes: [operator], hash: {env: HASH_A}}\n    - {name: ops, hash: {env: HASH_B}}\n    - {name: ops, hash: {env: HASH_C}}\ntenants: {acme: {}}\n",
			want: "$F:3: operators.api_keys[0]: unknown key \"scopes\" (allowed: name, hash, revoked)\n" +
				"$F:4: operators.api_keys[1].name: duplicate name \"ops\" (first on line 3)\n" +
				"$F:5: operators.api_keys[2].name: duplicate name \"ops\" (first on line 3)",
		},
		{
			name: "oidc: not a mapping, null, empty, unknown key",
			give: "tenants:\n  a: {oidc: [https://login.example.com]}\n  b:\n    oidc:\n  c:\n    oidc: {}\n  d:\n    oidc: {issuer: https://x.example, audience: tp, roles: {v: [kpis:read]}, client_secret: {env: X}}\n",
			want: "$F:2: tenants.a.oidc: want a mapping, not a list\n" +
				"$F:4: tenants.b.oidc: want a mapping with issuer:, audience: and roles:, not nothing\n" +
				"$F:6: tenants.c.oidc: missing issuer: (the provider's https:// issuer URL)\n" +
				"$F:6: tenants.c.oidc: missing audience: (the client id Ticketpulse is registered with)\n" +
				"$F:6: tenants.c.oidc: missing roles: (each role and the scopes it gives)\n" +
				"$F:8: tenants.d.oidc: unknown key \"client_secret\" (allowed: issuer, audience, tenant_claim, role_claim, roles)",
		},
		{
			name: "oidc issuers",
			give: `tenants:
  a: {oidc: {issuer: "http://login.example.com", audience: tp, roles: {v: [kpis:read]}}}
  b: {oidc: {issuer: "login.example.com", audience: tp, roles: {v: [kpis:read]}}}
  c: {oidc: {issuer: "https://login.example.com?tenant=c", audience: tp, roles: {v: [kpis:read]}}}
  d: {oidc: {issuer: "https://user:pw@login.example.com", audience: tp, roles: {v: [kpis:read]}}}
  e: {oidc: {issuer: "ftp://login.example.com", audience: tp, roles: {v: [kpis:read]}}}
  f: {oidc: {issuer: "https://", audience: tp, roles: {v: [kpis:read]}}}
  g: {oidc: {issuer: "http://127.0.0.2", audience: tp, roles: {v: [kpis:read]}}}
  h: {oidc: {issuer: "https://login.example.com/#x", audience: tp, roles: {v: [kpis:read]}}}
  i: {oidc: {issuer: "https://login example.com", audience: tp, roles: {v: [kpis:read]}}}
`,
			want: "$F:2: tenants.a.oidc.issuer: \"http://login.example.com\": an issuer is https:// (http:// only on localhost or 127.0.0.1)\n" +
				"$F:3: tenants.b.oidc.issuer: \"login.example.com\" is not an https:// URL\n" +
				"$F:4: tenants.c.oidc.issuer: an issuer URL has no user, query or fragment\n" +
				"$F:5: tenants.d.oidc.issuer: an issuer URL has no user, query or fragment\n" +
				"$F:6: tenants.e.oidc.issuer: \"ftp://login.example.com\" is not an https:// URL\n" +
				"$F:7: tenants.f.oidc.issuer: \"https://\" is not an https:// URL\n" +
				"$F:8: tenants.g.oidc.issuer: \"http://127.0.0.2\": an issuer is https:// (http:// only on localhost or 127.0.0.1)\n" +
				"$F:9: tenants.h.oidc.issuer: an issuer URL has no user, query or fragment\n" +
				"$F:10: tenants.i.oidc.issuer: \"https://login example.com\" is not an https:// URL",
		},
		{
			name: "oidc claims, audience and roles",
			give: `tenants:
  a:
    oidc:
      issuer: https://login.example.com
      audience: ""
      tenant_claim: [tenant]
      role_claim:
      roles: {}
  b:
    oidc:
      issuer: https://login.example.com
      audience: tp
      roles:
        viewer: []
        admin: [operator]
        agent: [kpis:read, kpis:write]
        "": [kpis:read]
        lead: {scopes: [kpis:read]}
`,
			want: "$F:5: tenants.a.oidc.audience: want a non-empty string, not an empty string\n" +
				"$F:6: tenants.a.oidc.tenant_claim: want a non-empty string, not a list\n" +
				"$F:7: tenants.a.oidc.role_claim: want a non-empty string, not nothing\n" +
				"$F:8: tenants.a.oidc.roles: no role defined; map each role of the role claim to its scopes\n" +
				"$F:14: tenants.b.oidc.roles.viewer: want at least one scope, not an empty list\n" +
				"$F:15: tenants.b.oidc.roles.admin[0]: operator spans every tenant; give it to a key under operators: instead\n" +
				"$F:16: tenants.b.oidc.roles.agent[1]: unknown scope \"kpis:write\" (want one of events:write, kpis:read, escalations:read, escalations:write, notifications:read, notifications:test)\n" +
				"$F:17: tenants.b.oidc.roles: a role is a non-empty string\n" +
				"$F:18: tenants.b.oidc.roles.lead: want a single value or a list, not a mapping",
		},
		{
			name: "operators' oidc: no tenant claim, operator only",
			give: `operators:
  oidc:
    issuer: https://sso.example.com
    audience: tp-ops
    tenant_claim: tenant
    roles: {admin: [operator, kpis:read], sre: kpis:read}
tenants: {acme: {}}
`,
			want: "$F:5: operators.oidc: unknown key \"tenant_claim\" (allowed: issuer, audience, role_claim, roles)\n" +
				"$F:6: operators.oidc.roles.admin[1]: the operators' roles give operator and nothing else, not \"kpis:read\"\n" +
				"$F:6: operators.oidc.roles.sre: the operators' roles give operator and nothing else, not \"kpis:read\"",
		},
		{
			name: "providers a token could match twice",
			give: `operators:
  oidc: {issuer: https://sso.example.com, audience: tp, roles: {admin: operator}}
tenants:
  a: {oidc: {issuer: https://sso.example.com, audience: tp, tenant_claim: t, roles: {v: [kpis:read]}}}
  b: {oidc: {issuer: https://sso.example.com, audience: console, tenant_claim: t, roles: {v: [kpis:read]}}}
  c: {oidc: {issuer: https://sso.example.com, audience: console, roles: {v: [kpis:read]}}}
  d: {oidc: {issuer: https://sso.example.com, audience: console, tenant_claim: t, roles: {v: [kpis:read]}}}
  e: {oidc: {issuer: https://other.example.com, audience: console, roles: {v: [kpis:read]}}}
`,
			want: "$F:4: tenants.a.oidc: operators.oidc has the same issuer and audience (line 2); the operators' provider needs an audience of its own\n" +
				"$F:6: tenants.c.oidc: tenants.b.oidc has the same issuer and audience (line 5); set tenant_claim: on both, so a token names its tenant\n" +
				"$F:7: tenants.d.oidc: tenants.c.oidc has the same issuer and audience (line 6); set tenant_claim: on both, so a token names its tenant",
		},
		{
			name: "an invalid tenant's keys are still checked",
			give: "tenants:\n  Acme:\n    api_keys: [{name: a, scopes: [kpis:read]}]\n",
			want: "$F:2: tenants: tenant id \"Acme\" must match [a-z0-9][a-z0-9_-]{0,62}\n" +
				"$F:3: tenants.Acme.api_keys[0]: missing hash: ({env: NAME} or {file: PATH} holding the key's sha256:... hash)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTenants(t, tt.give, tt.files)
			cfg, err := Load(path, getenv(testEnv), SourcesParser[NoSources](nil))
			want := strings.NewReplacer("$F", path, "$D", filepath.Dir(path)).Replace(tt.want)
			if cfg != nil || err == nil || err.Error() != want {
				t.Fatalf("Load = %v, error:\n%v\nwant error:\n%s", cfg, err, want)
			}
			var probs Problems
			if !errors.As(err, &probs) || len(probs) != strings.Count(want, "\n")+1 {
				t.Fatalf("error %T is not Problems, or holds %d problems", err, len(probs))
			}
			for name, v := range testEnv {
				if len(v) > 20 && strings.Contains(err.Error(), strings.TrimSpace(v)) {
					t.Fatalf("the value of %s leaked into the error:\n%v", name, err)
				}
			}
			for _, h := range []string{hashA, hashB, hashC, hashA[7:], hashB[7:], hashC[7:]} {
				if strings.Contains(err.Error(), h) {
					t.Fatalf("a hash leaked into the error:\n%v", err)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil, SourcesParser[NoSources](nil))
	var probs Problems
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &probs) {
		t.Fatalf("Load of a missing file: %v; want a wrapped fs.ErrNotExist", err)
	}
}

// countingSources is a SourcesParser that records how the platform calls it.
type countingSources struct{ n int }

func (c countingSources) Count() int { return c.n }

func TestSourcesParser(t *testing.T) {
	give := "defaults: {tolerance: 1m}\ntenants:\n  acme:\n    sources: {a: 1, b: 2}\n  globex: {}\n  bad:\n    sources: [x]\n"
	var tolerances []string
	calls := map[string]string{}
	parser := func(p *Parser, tolerance *yaml.Node) func(string, *yaml.Node, string) countingSources {
		if tolerance == nil {
			tolerances = append(tolerances, "")
		} else {
			tolerances = append(tolerances, tolerance.Value)
		}
		return func(tenant string, n *yaml.Node, path string) countingSources {
			if n == nil {
				calls[tenant] = "nil " + path
				return countingSources{}
			}
			if n.Kind != yaml.MappingNode {
				p.Addf(n, "%s: not sources", path)
				return countingSources{}
			}
			calls[tenant] = path
			return countingSources{n: len(n.Content) / 2}
		}
	}
	path := writeTenants(t, give, nil)
	_, err := Load(path, nil, parser)
	if err == nil || err.Error() != path+":7: tenants.bad.sources: not sources" {
		t.Fatalf("error %v; want the parser's problem", err)
	}
	want := map[string]string{"acme": "tenants.acme.sources", "globex": "nil tenants.globex.sources"}
	if !reflect.DeepEqual(tolerances, []string{"1m"}) || !reflect.DeepEqual(calls, want) {
		t.Fatalf("tolerance %v, calls %v; want [1m], %v", tolerances, calls, want)
	}

	cfg, err := Load(writeTenants(t, "tenants:\n  acme:\n    sources: {a: 1, b: 2}\n  globex: {}\n", nil), nil, parser)
	if err != nil {
		t.Fatal(err)
	}
	if acme, _ := cfg.Tenant("acme"); acme.Sources.n != 2 {
		t.Errorf("acme sources %+v", acme.Sources)
	}
	if tolerances[len(tolerances)-1] != "" {
		t.Errorf("no defaults.tolerance gave %q", tolerances[len(tolerances)-1])
	}
}

// TestLoadExample loads testdata/tenants.example.yaml, the example in docs/tenants.md, next to
// its hash files as a deployment would have it.
func TestLoadExample(t *testing.T) {
	example, err := os.ReadFile("testdata/tenants.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := writeTenants(t, string(example), map[string]string{"secrets/ops.hash": hashA + "\n", "secrets/acme-ci-2026-06.hash": hashB + "\n"})
	env := map[string]string{"ACME_CI_KEY_HASH": hashC, "GLOBEX_BRIDGE_KEY_HASH": "sha256:" + strings.Repeat("d4", 32)}
	cfg, err := Load(path, getenv(env), SourcesParser[NoSources](nil))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range cfg.Keys() {
		got = append(got, fmt.Sprintf("%s/%s %v revoked=%v %s", k.Tenant, k.Name, k.Scopes, k.Revoked, k.Hash.String()[:9]))
	}
	want := []string{
		"/ops [operator] revoked=false sha256:a1",
		"acme/ci-2026-12 [events:write kpis:read] revoked=false sha256:c3",
		"acme/ci-2026-06 [events:write kpis:read] revoked=true sha256:b2",
		"globex/bridge [events:write] revoked=false sha256:d4",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	providers := cfg.Providers()
	if len(providers) != 2 || providers[0].Tenant != "" || providers[0].Audience != "ticketpulse-ops" ||
		!reflect.DeepEqual(providers[0].Roles, map[string][]auth.Scope{"platform-admin": {auth.Operator}}) ||
		providers[1].Tenant != "acme" || providers[1].Issuer != "https://login.example.com" || providers[1].TenantClaim != "tenant" ||
		len(providers[1].Roles["supervisor"]) != 4 || providers[1].Roles["viewer"][0] != auth.KPIsRead {
		t.Errorf("providers %+v", providers)
	}
	globex, _ := cfg.Tenant("globex")
	if globex.RateLimit != (RateLimit{EventsPerSecond: 50, Burst: 1000}) || globex.OIDC != nil {
		t.Errorf("globex %+v", globex)
	}
}

func TestLogValueHoldsNoHash(t *testing.T) {
	path := writeTenants(t, registryYAML, map[string]string{"ci.hash": hashA, "old.hash": hashB, "ops.hash": hashC})
	cfg, err := Load(path, nil, SourcesParser[NoSources](nil))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		log := slog.New(h)
		log.Info("tenants loaded", "tenants", cfg)
		for _, tn := range cfg.Tenants {
			log.Info("tenant", "tenant", tn)
		}
	}
	s := out.String()
	for _, h := range []string{hashA[7:], hashB[7:], hashC[7:]} {
		if strings.Contains(s, h) {
			t.Fatalf("a hash was logged:\n%s", s)
		}
	}
	for _, want := range []string{
		`"tenants":{"tenants":2,"api_keys":3,"revoked_keys":1,"oidc":0}`,
		`"tenant":{"id":"acme","events_per_second":200,"burst":1000,"api_keys":["ci-2026-12","ci-2026-06"]}`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("log lacks %s:\n%s", want, s)
		}
	}
}
