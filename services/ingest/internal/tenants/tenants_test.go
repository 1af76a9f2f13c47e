package tenants

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
)

// Every secret value in these tests contains "sekrit", so one check can tell that none leaked.
const leakMarker = "sekrit"

var testEnv = map[string]string{
	"ZD":        "sekrit-zd",
	"ZD_OLD":    "sekrit-zd-old",
	"CW":        "sekrit-cw",
	"TOKEN":     "sekrit-token",
	"PASS":      "sekrit-pass",
	"GENERIC":   "whsec_" + base64.StdEncoding.EncodeToString([]byte("sekrit-generic-key")),
	"NOT_WHSEC": "sekrit-plain",
	"BAD_B64":   "whsec_sekrit*",
	"EMPTY":     "",
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

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name  string
		give  string
		files map[string]string
		want  string // $F is the tenants file, $D its directory
	}{
		{
			name: "empty file",
			give: "# nothing yet\n",
			want: "$F:1: the file is empty; want a mapping with a tenants: key",
		},
		{
			name: "YAML syntax error",
			give: "tenants:\n  acme:\n    sources: [zendesk\n",
			want: "$F:3: invalid YAML: did not find expected ',' or ']'",
		},
		{
			name: "YAML syntax error on the first line",
			give: "tenants: acme: x\n",
			want: "$F:1: invalid YAML: mapping values are not allowed in this context",
		},
		{
			name: "YAML parser error (the library counts these lines from 0)",
			give: "tenants:\n  acme: {}\n bad: 2\n",
			want: "$F:3: invalid YAML: did not find expected key",
		},
		{
			name: "tab indentation",
			give: "tenants:\n\tacme: {}\n",
			want: "$F:2: invalid YAML: found character that cannot start any token",
		},
		{
			name: "unknown anchor",
			give: "tenants:\n  acme:\n    sources:\n      zendesk: *zd\n",
			want: "$F:4: invalid YAML: unknown anchor 'zd' referenced",
		},
		{
			name: "a second document",
			give: "tenants:\n  acme: {}\n---\ntenants: {}\n",
			want: "$F:3: a second YAML document; the tenants file holds one",
		},
		{
			name: "root is a list",
			give: "- acme\n",
			want: "$F:1: want a mapping with a tenants: key, not a list",
		},
		{
			name: "misspelt top-level key, so no tenants",
			give: "# tenants\ntennants:\n  acme: {}\n",
			want: "$F:2: unknown key \"tennants\" (allowed: defaults, operators, tenants)\n" +
				"$F:2: missing tenants: (the tenants and their webhook sources)",
		},
		{
			name: "no tenant",
			give: "tenants: {}\n",
			want: "$F:1: tenants: no tenant defined",
		},
		{
			name: "bad tenant ids; their settings are still checked",
			give: "tenants:\n  Acme:\n    sources:\n      zendesk: {}\n  -x: {}\n  " + strings.Repeat("a", 64) + ": {}\n  ok_1-x: {}\n",
			want: "$F:2: tenants: tenant id \"Acme\" must match [a-z0-9][a-z0-9_-]{0,62}\n" +
				"$F:4: tenants.Acme.sources.zendesk: zendesk signs its deliveries; set secrets: (a list of {env: NAME} or {file: PATH})\n" +
				"$F:5: tenants: tenant id \"-x\" must match [a-z0-9][a-z0-9_-]{0,62}\n" +
				"$F:6: tenants: tenant id \"" + strings.Repeat("a", 64) + "\" must match [a-z0-9][a-z0-9_-]{0,62}",
		},
		{
			name: "duplicate tenant",
			give: "tenants:\n  acme: {}\n  beta: {}\n  acme: {}\n",
			want: "$F:4: tenants: duplicate key \"acme\" (first on line 2)",
		},
		{
			name: "unknown tenant key",
			give: "tenants:\n  acme:\n    source:\n      zendesk: {}\n",
			want: "$F:3: tenants.acme: unknown key \"source\" (allowed: rate_limit, api_keys, oidc, sources)",
		},
		{
			name: "unknown source",
			give: "tenants:\n  acme:\n    sources:\n      zendsk:\n        secrets: [{env: ZD}]\n",
			want: "$F:4: tenants.acme.sources: unknown source \"zendsk\" (want one of zendesk, chatwoot, freshdesk, helpscout, zammad, intercom, salesforce, hubspot, generic, typeform, surveymonkey, qualtrics, five9, genesys, ringcentral)",
		},
		{
			name: "misspelt source key",
			give: "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets: [{env: ZD}]\n        tolerence: 1m\n",
			want: "$F:6: tenants.acme.sources.zendesk: unknown key \"tolerence\" (allowed: secrets, tolerance)",
		},
		{
			name: "a key that does not apply to the source",
			give: "tenants:\n  acme:\n    sources:\n      helpscout:\n        secrets: [{env: ZD}]\n        tolerance: 1m\n        url_token: {env: TOKEN}\n",
			want: "$F:6: tenants.acme.sources.helpscout: unknown key \"tolerance\" (allowed: secrets)\n" +
				"$F:7: tenants.acme.sources.helpscout: unknown key \"url_token\" (allowed: secrets)",
		},
		{
			name: "contact centres without their credentials",
			give: "tenants:\n  acme:\n    sources:\n      five9: {ticket_field: t}\n      genesys: {}\n      ringcentral: {}\n",
			want: "$F:4: tenants.acme.sources.five9: five9 cannot sign; set url_token: (the ?token= of the connector's URL)\n" +
				"$F:5: tenants.acme.sources.genesys: set secrets: (the shared secret the Genesys Cloud webhook sends in X-Ticketpulse-Secret)\n" +
				"$F:6: tenants.acme.sources.ringcentral: set secrets: (the verificationToken the RingCentral subscription was created with)",
		},
		{
			name: "contact-centre keys that do not apply",
			give: "tenants:\n  acme:\n    sources:\n      five9: {url_token: {env: TOKEN}, ticket_field: \" \"}\n      genesys: {secrets: [{env: ZD}], ticket_field: t}\n      ringcentral: {secrets: [{env: ZD}], tolerance: 1m}\n",
			want: "$F:4: tenants.acme.sources.five9.ticket_field: must not be empty\n" +
				"$F:5: tenants.acme.sources.genesys: unknown key \"ticket_field\" (allowed: secrets)\n" +
				"$F:6: tenants.acme.sources.ringcentral: unknown key \"tolerance\" (allowed: secrets)",
		},
		{
			name: "source that signs without secrets",
			give: "tenants:\n  acme:\n    sources:\n      intercom:\n        {}\n",
			want: "$F:4: tenants.acme.sources.intercom: intercom signs its deliveries; set secrets: (a list of {env: NAME} or {file: PATH})",
		},
		{
			name: "empty secrets list",
			give: "tenants:\n  acme:\n    sources:\n      zammad:\n        secrets: []\n",
			want: "$F:5: tenants.acme.sources.zammad.secrets: needs at least one secret",
		},
		{
			name: "null secrets",
			give: "tenants:\n  acme:\n    sources:\n      zammad:\n        secrets:\n",
			want: "$F:5: tenants.acme.sources.zammad.secrets: needs at least one secret",
		},
		{
			name: "secrets as a single reference instead of a list",
			give: "tenants:\n  acme:\n    sources:\n      zammad:\n        secrets: {env: ZD}\n",
			want: "$F:5: tenants.acme.sources.zammad.secrets: want a list of {env: NAME} or {file: PATH}, not a mapping",
		},
		{
			name: "literal secret is refused and not quoted",
			give: "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets:\n          - sekrit-pasted\n",
			want: "$F:6: tenants.acme.sources.zendesk.secrets[0]: secrets are never written in this file; use {env: NAME} or {file: PATH}",
		},
		{
			name: "value: is refused and not quoted",
			give: "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets:\n          - value: sekrit-pasted\n",
			want: "$F:6: tenants.acme.sources.zendesk.secrets[0]: secrets are never written in this file; use {env: NAME} or {file: PATH}",
		},
		{
			name: "a flow mapping holding only a pasted secret does not quote it",
			give: "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets: [{sekrit-pasted}]\n",
			want: "$F:5: tenants.acme.sources.zendesk.secrets[0]: unknown key (allowed: env, file)",
		},
		{
			name: "env and file together",
			give: "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets:\n          - env: ZD\n            file: zd.txt\n",
			want: "$F:7: tenants.acme.sources.zendesk.secrets[0]: set env: or file:, not both",
		},
		{
			name: "empty reference and duplicate env",
			give: "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets:\n          - {}\n          - {env: ZD, env: ZD_OLD}\n",
			want: "$F:6: tenants.acme.sources.zendesk.secrets[0]: want {env: NAME} or {file: PATH}\n" +
				"$F:7: tenants.acme.sources.zendesk.secrets[1]: duplicate key (first on line 7)",
		},
		{
			name: "env unset, empty, badly named, or not a string",
			give: "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets:\n          - env: ACME_ZD\n          - env: EMPTY\n          - env: ACME-ZD\n          - env: [ZD]\n          - env:\n",
			want: "$F:6: tenants.acme.sources.zendesk.secrets[0].env: environment variable ACME_ZD is unset or empty\n" +
				"$F:7: tenants.acme.sources.zendesk.secrets[1].env: environment variable EMPTY is unset or empty\n" +
				"$F:8: tenants.acme.sources.zendesk.secrets[2].env: \"ACME-ZD\" is not an environment variable name\n" +
				"$F:9: tenants.acme.sources.zendesk.secrets[3].env: want a non-empty string, not a list\n" +
				"$F:10: tenants.acme.sources.zendesk.secrets[4].env: want a non-empty string, not nothing",
		},
		{
			name:  "secret files missing, empty, only a newline, a directory, too big, a device",
			give:  "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets:\n          - file: nope.txt\n          - file: empty.txt\n          - file: newline.txt\n          - file: dir\n          - file: ''\n          - file: big.txt\n          - file: /dev/null\n",
			files: map[string]string{"empty.txt": "", "newline.txt": "\r\n", "dir/x": "sekrit", "big.txt": strings.Repeat("sekrit", 11000)},
			want: "$F:6: tenants.acme.sources.zendesk.secrets[0].file: reading secret file $D/nope.txt: no such file or directory\n" +
				"$F:7: tenants.acme.sources.zendesk.secrets[1].file: secret file $D/empty.txt is empty\n" +
				"$F:8: tenants.acme.sources.zendesk.secrets[2].file: secret file $D/newline.txt is empty\n" +
				"$F:9: tenants.acme.sources.zendesk.secrets[3].file: $D/dir is not a regular file of at most 65536 bytes\n" +
				"$F:10: tenants.acme.sources.zendesk.secrets[4].file: want a non-empty string, not an empty string\n" +
				"$F:11: tenants.acme.sources.zendesk.secrets[5].file: $D/big.txt is not a regular file of at most 65536 bytes\n" +
				"$F:12: tenants.acme.sources.zendesk.secrets[6].file: /dev/null is not a regular file of at most 65536 bytes",
		},
		{
			name: "bad tolerances",
			give: "defaults:\n  tolerance: 0s\ntenants:\n  acme:\n    sources:\n      zendesk: {secrets: [{env: ZD}], tolerance: -5m}\n" +
				"      chatwoot: {secrets: [{env: CW}], tolerance: 300}\n      generic: {secrets: [{env: GENERIC}], tolerance: [5m]}\n",
			want: "$F:2: defaults.tolerance: 0s is not positive\n" +
				"$F:6: tenants.acme.sources.zendesk.tolerance: -5m is not positive\n" +
				"$F:7: tenants.acme.sources.chatwoot.tolerance: \"300\" is not a duration (write e.g. 5m or 90s)\n" +
				"$F:8: tenants.acme.sources.generic.tolerance: want a non-empty string, not a list",
		},
		{
			name: "bad rate limits",
			give: "defaults:\n  rate_limit: {events_per_second: 0, burst: 1.5}\ntenants:\n  acme:\n    rate_limit:\n      events_per_second: fast\n      burst: 0\n      rps: 3\n" +
				"  beta:\n    rate_limit: {events_per_second: .inf, burst: -1}\n  gamma:\n    rate_limit: {events_per_second: .nan}\n",
			want: "$F:2: defaults.rate_limit.events_per_second: want a positive number, not \"0\"\n" +
				"$F:2: defaults.rate_limit.burst: want a positive whole number, not \"1.5\"\n" +
				"$F:6: tenants.acme.rate_limit.events_per_second: want a positive number, not \"fast\"\n" +
				"$F:7: tenants.acme.rate_limit.burst: want a positive whole number, not \"0\"\n" +
				"$F:8: tenants.acme.rate_limit: unknown key \"rps\" (allowed: events_per_second, burst)\n" +
				"$F:10: tenants.beta.rate_limit.events_per_second: want a positive number, not \".inf\"\n" +
				"$F:10: tenants.beta.rate_limit.burst: want a positive whole number, not \"-1\"\n" +
				"$F:12: tenants.gamma.rate_limit.events_per_second: want a positive number, not \".nan\"",
		},
		{
			name:  "generic secrets must be whsec_ and base64",
			give:  "tenants:\n  acme:\n    sources:\n      generic:\n        secrets:\n          - env: NOT_WHSEC\n          - env: BAD_B64\n          - file: generic.txt\n          - env: GENERIC\n",
			files: map[string]string{"generic.txt": "whsec_\n"},
			want: "$F:6: tenants.acme.sources.generic.secrets[0]: environment variable NOT_WHSEC: not a Standard Webhooks secret (want whsec_ followed by base64): missing the whsec_ prefix\n" +
				"$F:7: tenants.acme.sources.generic.secrets[1]: environment variable BAD_B64: not a Standard Webhooks secret (want whsec_ followed by base64): illegal base64 data at input byte 6\n" +
				"$F:8: tenants.acme.sources.generic.secrets[2]: file $D/generic.txt: not a Standard Webhooks secret (want whsec_ followed by base64): empty key",
		},
		{
			name: "typeform without its survey settings",
			give: "tenants:\n  acme:\n    sources:\n      typeform:\n        secrets: [{env: ZD}]\n",
			want: "$F:4: tenants.acme.sources.typeform: missing ticket_field: (see docs/surveys.md)\n" +
				"$F:4: tenants.acme.sources.typeform: missing score_question: (see docs/surveys.md)\n" +
				"$F:4: tenants.acme.sources.typeform: missing scale: (see docs/surveys.md)",
		},
		{
			name: "typeform with bad survey settings",
			give: "tenants:\n  acme:\n    sources:\n      typeform:\n        secrets: [{env: ZD}]\n" +
				"        ticket_field: \"\"\n        score_question: [csat]\n        scale: 1-7\n        tolerance: 1m\n",
			want: "$F:6: tenants.acme.sources.typeform.ticket_field: want a non-empty string, not an empty string\n" +
				"$F:7: tenants.acme.sources.typeform.score_question: want a non-empty string, not a list\n" +
				"$F:8: tenants.acme.sources.typeform.scale: unknown scale \"1-7\" (want one of 1-5, 1-10, 0-10, nps, thumbs)\n" +
				"$F:9: tenants.acme.sources.typeform: unknown key \"tolerance\" (allowed: secrets, ticket_field, agent_field, score_question, comment_question, scale)",
		},
		{
			name: "surveymonkey without its API key",
			give: "tenants:\n  acme:\n    sources:\n      surveymonkey:\n        secrets: [{env: ZD}]\n        ticket_field: t\n        score_question: q\n        scale: nps\n",
			want: "$F:4: tenants.acme.sources.surveymonkey: surveymonkey signs with the app's API key and API secret; set api_key: (the client id, not a secret) and secrets: (the API secret)",
		},
		{
			name: "qualtrics without a token",
			give: "tenants:\n  acme:\n    sources:\n      qualtrics:\n        ticket_field: t\n        score_question: QID1\n        scale: thumbs\n",
			want: "$F:4: tenants.acme.sources.qualtrics: qualtrics cannot sign; set url_token: (the ?token= of the subscription's publication URL)",
		},
		{
			name: "qualtrics with secrets",
			give: "tenants:\n  acme:\n    sources:\n      qualtrics:\n        url_token: {env: TOKEN}\n        secrets: [{env: ZD}]\n        ticket_field: t\n        score_question: QID1\n        scale: 1-5\n",
			want: "$F:6: tenants.acme.sources.qualtrics: unknown key \"secrets\" (allowed: url_token, ticket_field, agent_field, score_question, comment_question, scale, access_token, api_url)",
		},
		{
			name: "freshdesk without credentials",
			give: "tenants:\n  acme:\n    sources:\n      freshdesk: {}\n",
			want: "$F:4: tenants.acme.sources.freshdesk: freshdesk cannot sign; set url_token:, basic_auth: or both",
		},
		{
			name: "freshdesk with secrets",
			give: "tenants:\n  acme:\n    sources:\n      freshdesk:\n        url_token: {env: TOKEN}\n        secrets: [{env: ZD}]\n",
			want: "$F:6: tenants.acme.sources.freshdesk: unknown key \"secrets\" (allowed: url_token, basic_auth)",
		},
		{
			name: "basic auth problems",
			give: "tenants:\n  acme:\n    sources:\n      freshdesk:\n        basic_auth: {user: \"tp:x\", password: sekrit-pasted}\n" +
				"  beta:\n    sources:\n      freshdesk:\n        basic_auth: {pass: {env: PASS}}\n" +
				"  gamma:\n    sources:\n      freshdesk:\n        basic_auth: tp\n",
			want: "$F:5: tenants.acme.sources.freshdesk.basic_auth.user: must not contain a colon (HTTP Basic separates user and password with one)\n" +
				"$F:5: tenants.acme.sources.freshdesk.basic_auth.password: secrets are never written in this file; use {env: NAME} or {file: PATH}\n" +
				"$F:9: tenants.beta.sources.freshdesk.basic_auth: unknown key \"pass\" (allowed: user, password)\n" +
				"$F:9: tenants.beta.sources.freshdesk.basic_auth: missing user:\n" +
				"$F:9: tenants.beta.sources.freshdesk.basic_auth: missing password: ({env: NAME} or {file: PATH})\n" +
				"$F:13: tenants.gamma.sources.freshdesk.basic_auth: want a mapping, not a single value",
		},
		{
			name: "chatwoot with neither secrets nor a token",
			give: "tenants:\n  acme:\n    sources:\n      chatwoot:\n        tolerance: 1m\n",
			want: "$F:4: tenants.acme.sources.chatwoot: set secrets: (or, for installs too old to sign, allow_unsigned_with_token:)",
		},
		{
			name: "chatwoot token unset",
			give: "tenants:\n  acme:\n    sources:\n      chatwoot:\n        allow_unsigned_with_token: {env: ACME_CW_TOKEN}\n",
			want: "$F:5: tenants.acme.sources.chatwoot.allow_unsigned_with_token.env: environment variable ACME_CW_TOKEN is unset or empty",
		},
		{
			name: "source is a list",
			give: "tenants:\n  acme:\n    sources:\n      zendesk:\n        - env: ZD\n",
			want: "$F:5: tenants.acme.sources.zendesk: want a mapping, not a list",
		},
		{
			name: "merge keys are not supported",
			give: "base: &base\n  secrets: [{env: ZD}]\ntenants:\n  acme:\n    sources:\n      zendesk:\n        <<: *base\n",
			want: "$F:1: unknown key \"base\" (allowed: defaults, operators, tenants)\n" +
				"$F:6: tenants.acme.sources.zendesk: zendesk signs its deliveries; set secrets: (a list of {env: NAME} or {file: PATH})\n" +
				"$F:7: tenants.acme.sources.zendesk: unknown key \"<<\" (allowed: secrets, tolerance)",
		},
		{
			name: "quoted path for odd keys",
			give: "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets: [{env: ZD}]\n        \"a.b\": 1\n",
			want: "$F:6: tenants.acme.sources.zendesk: unknown key \"a.b\" (allowed: secrets, tolerance)",
		},
		{
			name: "every problem at once, in line order",
			give: `defaults:
  tolerance: soon
tenants:
  acme:
    rate_limit: {burst: 0}
    sources:
      zendesk:
        secrets: [{env: MISSING}, {file: gone}]
      chatwoot:
        secrets: [{env: CW}]
        allow_unsigned_with_token: {env: EMPTY}
  beta:
    sources:
      jira: {}
      generic: {secrets: [{env: ZD}]}
`,
			want: "$F:2: defaults.tolerance: \"soon\" is not a duration (write e.g. 5m or 90s)\n" +
				"$F:5: tenants.acme.rate_limit.burst: want a positive whole number, not \"0\"\n" +
				"$F:8: tenants.acme.sources.zendesk.secrets[0].env: environment variable MISSING is unset or empty\n" +
				"$F:8: tenants.acme.sources.zendesk.secrets[1].file: reading secret file $D/gone: no such file or directory\n" +
				"$F:11: tenants.acme.sources.chatwoot.allow_unsigned_with_token.env: environment variable EMPTY is unset or empty\n" +
				"$F:14: tenants.beta.sources: unknown source \"jira\" (want one of zendesk, chatwoot, freshdesk, helpscout, zammad, intercom, salesforce, hubspot, generic, typeform, surveymonkey, qualtrics, five9, genesys, ringcentral)\n" +
				"$F:15: tenants.beta.sources.generic.secrets[0]: environment variable ZD: not a Standard Webhooks secret (want whsec_ followed by base64): missing the whsec_ prefix",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTenants(t, tt.give, tt.files)
			cfg, err := Load(path, getenv(testEnv))
			want := strings.NewReplacer("$F", path, "$D", filepath.Dir(path)).Replace(tt.want)
			if cfg != nil || err == nil || err.Error() != want {
				t.Fatalf("Load = %v, error:\n%v\nwant error:\n%s", cfg, err, want)
			}
			var probs Problems
			if !errors.As(err, &probs) || len(probs) != strings.Count(want, "\n")+1 {
				t.Fatalf("error %T is not Problems, or holds %d problems", err, len(probs))
			}
			if strings.Contains(err.Error(), leakMarker) {
				t.Fatalf("a secret value leaked into the error:\n%v", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	var probs Problems
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &probs) {
		t.Fatalf("Load of a missing file: %v; want a wrapped fs.ErrNotExist", err)
	}
}

// The reference signer is independent of package verify, so the tests below show that each
// secret reached the right place by checking a delivery signed with the value the test expects.

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

var testNow = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// signed builds a delivery for source signed with secret (for generic, a whsec_ secret).
func signed(t *testing.T, source, secret string) verify.Delivery {
	t.Helper()
	const body = `{"id":"evt-1"}`
	h := http.Header{}
	b64 := base64.StdEncoding.EncodeToString
	ts := strconv.FormatInt(testNow.Unix(), 10)
	switch source {
	case verify.Zendesk:
		rts := testNow.Format(time.RFC3339)
		h.Set("X-Zendesk-Webhook-Signature", b64(hmacSum(sha256.New, []byte(secret), rts+body)))
		h.Set("X-Zendesk-Webhook-Signature-Timestamp", rts)
	case verify.Chatwoot:
		h.Set("X-Chatwoot-Signature", "sha256="+hex.EncodeToString(hmacSum(sha256.New, []byte(secret), ts+"."+body)))
		h.Set("X-Chatwoot-Timestamp", ts)
	case verify.HelpScout:
		h.Set("X-HelpScout-Signature", b64(hmacSum(sha1.New, []byte(secret), body)))
	case verify.Zammad, verify.Intercom:
		h.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(hmacSum(sha1.New, []byte(secret), body)))
	case verify.Generic:
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			t.Fatal(err)
		}
		h.Set("webhook-id", "msg_1")
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", "v1,"+b64(hmacSum(sha256.New, key, "msg_1."+ts+"."+body)))
	case verify.Typeform:
		h.Set("Typeform-Signature", "sha256="+b64(hmacSum(sha256.New, []byte(secret), body)))
	case verify.SurveyMonkey:
		// The example's API key; the secret is the API secret.
		h.Set("Sm-Signature", b64(hmacSum(sha1.New, []byte("sm-client-id&"+secret), body)))
	default:
		t.Fatalf("no signer for %s", source)
	}
	return verify.Delivery{Header: h, Body: []byte(body)}
}

var testVerifier = verify.Verifier{Now: func() time.Time { return testNow }}

// accepts reports whether sc accepts d; a config error fails the test.
func accepts(t *testing.T, sc *SourceConfig, d verify.Delivery) bool {
	t.Helper()
	_, err := testVerifier.Verify(&sc.Config, d)
	if _, ok := errors.AsType[*verify.Rejection](err); err != nil && !ok {
		t.Fatalf("%s/%s: %v", sc.Tenant, sc.Source, err)
	}
	return err == nil
}

var exampleEnv = map[string]string{
	"ACME_ZENDESK_SECRET":            "sekrit-zd-new",
	"ACME_CHATWOOT_SECRET":           "sekrit-cw",
	"ACME_CHATWOOT_TOKEN":            "sekrit-cw-token",
	"ACME_FRESHDESK_TOKEN":           "sekrit-fd-token",
	"ACME_FRESHDESK_PASSWORD":        "sekrit-fd-pass",
	"ACME_HELPSCOUT_SECRET":          "sekrit-hs",
	"ACME_ZAMMAD_SECRET":             "sekrit-zm",
	"ACME_INTERCOM_SECRET":           "sekrit-ic",
	"ACME_SALESFORCE_TOKEN":          "sekrit-sf-token",
	"ACME_SALESFORCE_SECRET":         "sekrit-sf",
	"ACME_HUBSPOT_SECRET":            "sekrit-hubspot",
	"ACME_HUBSPOT_TOKEN":             "pat-na1-sekrit",
	"ACME_SURVEYMONKEY_ACCESS_TOKEN": "sm-sekrit-access",
	"ACME_QUALTRICS_API_TOKEN":       "q-sekrit-api",
	"ACME_GENERIC_SECRET":            "whsec_" + base64.StdEncoding.EncodeToString([]byte("sekrit-generic")),
	"ACME_TYPEFORM_SECRET":           "sekrit-tf",
	"ACME_SURVEYMONKEY_SECRET":       "sekrit-sm",
	"ACME_QUALTRICS_TOKEN":           "sekrit-qx-token",
	"ACME_FIVE9_TOKEN":               "sekrit-f9-token",
	"ACME_GENESYS_SECRET":            "sekrit-gc",
	"ACME_RINGCENTRAL_TOKEN":         "sekrit-rc",
}

// loadExample loads testdata/tenants.example.yaml (the example in docs/helpdesks.md) from a copy next to its
// secret file, as a deployment would have it.
func loadExample(t *testing.T) *Config {
	t.Helper()
	example, err := os.ReadFile("testdata/tenants.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := writeTenants(t, string(example), map[string]string{"secrets/acme_zendesk_old": "sekrit-zd-old\n"})
	cfg, err := Load(path, getenv(exampleEnv))
	if err != nil {
		t.Fatalf("Load(example): %v", err)
	}
	return cfg
}

func TestLoadExample(t *testing.T) {
	cfg := loadExample(t)
	if len(cfg.Tenants) != 2 {
		t.Fatalf("tenants = %v; want acme and globex", cfg.Tenants)
	}
	acme, _ := cfg.Tenant("acme")
	globex, ok := cfg.Tenant("globex")
	if !ok || len(globex.Sources) != 0 || globex.ID != "globex" {
		t.Fatalf("globex = %+v; want a tenant without sources", globex)
	}
	rates := []struct {
		name      string
		got, want RateLimit
	}{
		{"acme overrides the rate and keeps the default burst", acme.RateLimit, RateLimit{EventsPerSecond: 50, Burst: 1000}},
		{"globex has the defaults", globex.RateLimit, RateLimit{EventsPerSecond: DefaultEventsPerSecond, Burst: DefaultBurst}},
	}
	for _, r := range rates {
		if r.got != r.want {
			t.Errorf("%s: %+v, want %+v", r.name, r.got, r.want)
		}
	}
	if len(acme.Sources) != len(verify.Sources) {
		t.Fatalf("acme has %d sources; want all %d", len(acme.Sources), len(verify.Sources))
	}

	tests := []struct {
		source        string
		secret        string // signs a delivery that must be accepted
		tolerance     time.Duration
		secretsLoaded int
	}{
		{verify.Zendesk, "sekrit-zd-new", 2 * time.Minute, 2},
		{verify.Zendesk, "sekrit-zd-old", 2 * time.Minute, 2}, // rotation, from the file, newline trimmed
		{verify.Chatwoot, "sekrit-cw", 5 * time.Minute, 1},
		{verify.HelpScout, "sekrit-hs", 0, 1},
		{verify.Zammad, "sekrit-zm", 0, 1},
		{verify.Intercom, "sekrit-ic", 0, 1},
		{verify.Generic, exampleEnv["ACME_GENERIC_SECRET"], 5 * time.Minute, 1},
		{verify.Typeform, "sekrit-tf", 0, 1},
		{verify.SurveyMonkey, "sekrit-sm", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.source+"/"+tt.secret, func(t *testing.T) {
			sc, ok := Source(cfg, "acme", tt.source)
			if !ok || sc.Tenant != "acme" || sc.Source != tt.source {
				t.Fatalf("Source(acme, %s) = %+v, %v", tt.source, sc, ok)
			}
			if sc.Tolerance != tt.tolerance || len(sc.Secrets) != tt.secretsLoaded {
				t.Errorf("tolerance %v, %d secrets; want %v, %d", sc.Tolerance, len(sc.Secrets), tt.tolerance, tt.secretsLoaded)
			}
			if !accepts(t, sc, signed(t, tt.source, tt.secret)) {
				t.Errorf("a delivery signed with the configured secret was rejected")
			}
			wrong := "sekrit-wrong"
			if tt.source == verify.Generic {
				wrong = "whsec_" + base64.StdEncoding.EncodeToString([]byte(wrong))
			}
			if accepts(t, sc, signed(t, tt.source, wrong)) {
				t.Errorf("a delivery signed with another secret was accepted")
			}
		})
	}

	credentials := []struct {
		name   string
		source string
		give   verify.Delivery
		want   bool
	}{
		{"chatwoot unsigned with its token", verify.Chatwoot, verify.Delivery{Query: url.Values{"token": {"sekrit-cw-token"}}}, true},
		{"chatwoot unsigned with freshdesk's token", verify.Chatwoot, verify.Delivery{Query: url.Values{"token": {"sekrit-fd-token"}}}, false},
		{"freshdesk token", verify.Freshdesk, verify.Delivery{Query: url.Values{"token": {"sekrit-fd-token"}}}, true},
		{"freshdesk basic auth", verify.Freshdesk, verify.Delivery{Header: http.Header{"Authorization": {
			"Basic " + base64.StdEncoding.EncodeToString([]byte("ticketpulse:sekrit-fd-pass"))}}}, true},
		{"freshdesk basic auth, other user", verify.Freshdesk, verify.Delivery{Header: http.Header{"Authorization": {
			"Basic " + base64.StdEncoding.EncodeToString([]byte("admin:sekrit-fd-pass"))}}}, false},
		{"qualtrics token", verify.Qualtrics, verify.Delivery{Query: url.Values{"token": {"sekrit-qx-token"}}}, true},
		{"qualtrics with freshdesk's token", verify.Qualtrics, verify.Delivery{Query: url.Values{"token": {"sekrit-fd-token"}}}, false},
		{"five9 token", verify.Five9, verify.Delivery{Query: url.Values{"token": {"sekrit-f9-token"}}}, true},
		{"five9 with qualtrics' token", verify.Five9, verify.Delivery{Query: url.Values{"token": {"sekrit-qx-token"}}}, false},
		{"genesys secret", verify.Genesys, verify.Delivery{Header: http.Header{"X-Ticketpulse-Secret": {"sekrit-gc"}}, Body: []byte("{}")}, true},
		{"genesys, another secret", verify.Genesys, verify.Delivery{Header: http.Header{"X-Ticketpulse-Secret": {"sekrit-rc"}}, Body: []byte("{}")}, false},
		{"ringcentral token", verify.RingCentral, verify.Delivery{Header: http.Header{"Verification-Token": {"sekrit-rc"}}, Body: []byte("{}")}, true},
		{"ringcentral, another token", verify.RingCentral, verify.Delivery{Header: http.Header{"Verification-Token": {"sekrit-gc"}}, Body: []byte("{}")}, false},
	}
	for _, c := range credentials {
		sc, _ := Source(cfg, "acme", c.source)
		if got := accepts(t, sc, c.give); got != c.want {
			t.Errorf("%s: accepted = %v, want %v", c.name, got, c.want)
		}
	}

	settings := []struct {
		source string
		want   adapter.Settings
	}{
		{verify.Zendesk, adapter.Settings{}},
		{verify.Typeform, adapter.Settings{TicketField: "ticket_id", AgentField: "agent_id", ScoreQuestion: "csat", CommentQuestion: "why", Scale: "1-5"}},
		{verify.SurveyMonkey, adapter.Settings{TicketField: "ticket_id", ScoreQuestion: "667461690", Scale: "nps"}},
		{verify.Qualtrics, adapter.Settings{TicketField: "ticket_id", ScoreQuestion: "QID3", Scale: "1-10"}},
		{verify.Five9, adapter.Settings{TicketField: "ticket_id"}},
		{verify.Genesys, adapter.Settings{}},
		{verify.RingCentral, adapter.Settings{}},
	}
	for _, s := range settings {
		if sc, _ := Source(cfg, "acme", s.source); sc.Settings != s.want {
			t.Errorf("%s settings %+v, want %+v", s.source, sc.Settings, s.want)
		}
	}
	if sc, _ := Source(cfg, "acme", verify.SurveyMonkey); sc.APIKey != "sm-client-id" {
		t.Errorf("surveymonkey api key %q, want sm-client-id", sc.APIKey)
	}

	lookups := []struct{ tenant, source string }{{"acme", "jira"}, {"nobody", "zendesk"}, {"globex", "zendesk"}, {"", ""}}
	for _, l := range lookups {
		if sc, ok := Source(cfg, l.tenant, l.source); ok || sc != nil {
			t.Errorf("Source(%q, %q) = %v, %v; want nothing", l.tenant, l.source, sc, ok)
		}
	}
	if _, ok := cfg.Tenant("nobody"); ok {
		t.Error("Tenant(nobody) found")
	}
}

func TestFileSecrets(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "abs.txt")
	if err := os.WriteFile(abs, []byte("sekrit-abs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		file    string // as written in the tenants file; "" means the relative default
		want    string
	}{
		{name: "trailing newline dropped", content: "sekrit\n", want: "sekrit"},
		{name: "CRLF dropped", content: "sekrit\r\n", want: "sekrit"},
		{name: "no newline", content: "sekrit", want: "sekrit"},
		{name: "only one newline dropped", content: "sekrit\n\n", want: "sekrit\n"},
		{name: "spaces kept", content: " sekrit \n", want: " sekrit "},
		{name: "lone CR kept", content: "sekrit\r", want: "sekrit\r"},
		{name: "absolute path", file: abs, want: "sekrit-abs"},
		{name: "relative path in a subdirectory", content: "sekrit-sub\n", file: "sub/dir/zammad.txt", want: "sekrit-sub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := cmpOr(tt.file, "zammad.txt")
			files := map[string]string{}
			if !filepath.IsAbs(file) {
				files[file] = tt.content
			}
			path := writeTenants(t, fmt.Sprintf("tenants:\n  acme:\n    sources:\n      zammad:\n        secrets: [{file: %q}]\n", file), files)
			cfg, err := Load(path, getenv(nil))
			if err != nil {
				t.Fatal(err)
			}
			sc, _ := Source(cfg, "acme", verify.Zammad)
			if !accepts(t, sc, signed(t, verify.Zammad, tt.want)) {
				t.Fatalf("the secret read is not %q", tt.want)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestLoadUsesTheEnvironmentByDefault(t *testing.T) {
	t.Setenv("TP_TENANTS_TEST_SECRET", "sekrit-from-env")
	path := writeTenants(t, "tenants:\n  acme:\n    sources:\n      helpscout: {secrets: [{env: TP_TENANTS_TEST_SECRET}]}\n", nil)
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := Source(cfg, "acme", verify.HelpScout)
	if !accepts(t, sc, signed(t, verify.HelpScout, "sekrit-from-env")) {
		t.Fatal("the secret did not come from the process environment")
	}
}

func TestDefaultsAndAliases(t *testing.T) {
	give := `defaults:
  tolerance: 90s
  rate_limit: {events_per_second: 0.5, burst: 3}
tenants:
  acme:
    sources:
      zammad: {secrets: &shared [{env: ZD}, {env: ZD_OLD}]}
      intercom: {secrets: *shared}
      zendesk: {secrets: *shared}
  beta:
  "42": {rate_limit: {burst: 7}}
`
	cfg, err := Load(writeTenants(t, give, nil), getenv(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	zd, _ := Source(cfg, "acme", verify.Zendesk)
	beta, _ := cfg.Tenant("beta")
	t42, _ := cfg.Tenant("42")
	checks := []struct {
		name      string
		got, want any
	}{
		{"default tolerance", zd.Tolerance, 90 * time.Second},
		{"acme rate limit", cfg.Tenants["acme"].RateLimit, RateLimit{EventsPerSecond: 0.5, Burst: 3}},
		{"null tenant", beta.RateLimit, RateLimit{EventsPerSecond: 0.5, Burst: 3}},
		{"numeric tenant id, partial override", t42.RateLimit, RateLimit{EventsPerSecond: 0.5, Burst: 7}},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, source := range []string{verify.Zammad, verify.Intercom, verify.Zendesk} {
		sc, _ := Source(cfg, "acme", source)
		for _, secret := range []string{testEnv["ZD"], testEnv["ZD_OLD"]} {
			if !accepts(t, sc, signed(t, source, secret)) {
				t.Errorf("%s: the aliased secret list does not hold %s's secret", source, secret)
			}
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	cfg := loadExample(t)
	var out bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		log := slog.New(h)
		log.Info("tenants loaded", "tenants", cfg)
		for _, tn := range cfg.Tenants {
			log.Info("tenant", "tenant", tn, "value", *tn)
			for _, sc := range tn.Sources {
				log.Info("source", "source", sc, "value", *sc, "config", sc.Config)
			}
		}
	}
	for _, tn := range cfg.Tenants {
		for _, sc := range tn.Sources {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
				fmt.Fprintf(&out, verb+"\n", *sc)
				fmt.Fprintf(&out, verb+"\n", sc.Config)
			}
		}
	}
	s := out.String()
	for _, v := range exampleEnv {
		for _, form := range []string{v, hex.EncodeToString([]byte(v)), base64.StdEncoding.EncodeToString([]byte(v))} {
			if strings.Contains(s, form) {
				t.Fatalf("secret %q printed:\n%s", v, s)
			}
		}
	}
	if strings.Contains(s, leakMarker) {
		t.Fatalf("a secret printed:\n%s", s)
	}
	for _, want := range []string{`"tenants":{"tenants":2,"sources":15,"api_keys":0,"revoked_keys":0,"oidc":0}`, `"tenant":"acme","source":"zendesk","secrets":2`, `"ticket_field":"ticket_id","score_question":"csat","scale":"1-5"`, "[redacted]"} {
		if !strings.Contains(s, want) {
			t.Errorf("log lacks %s:\n%s", want, s)
		}
	}
}

func TestEverySourceHasAVocabulary(t *testing.T) {
	for _, s := range verify.Sources {
		if len(sourceKeys[s]) == 0 {
			t.Errorf("source %s has no keys in the tenants file", s)
		}
	}
	if len(sourceKeys) != len(verify.Sources) {
		t.Errorf("sourceKeys names %d sources, verify knows %d", len(sourceKeys), len(verify.Sources))
	}
}
