package routing

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// okReceiver is a receiver definition without problems, for files about something else.
const okReceiver = "receivers:\n  - name: a\n    slack: {url: {env: SLACK_BILLING_URL}}\n"

// rejectTests are bad files and the exact problems Parse reports for them; $F is the file
// name, $D the directory {file: PATH} secrets are relative to (see rejectDir).
var rejectTests = []struct {
	name string
	give string
	want string
}{
	{
		name: "empty file",
		give: "# no routes yet\n",
		want: "$F:1: the file is empty; want a mapping with receivers: and route: keys",
	},
	{
		name: "YAML syntax error",
		give: okReceiver + "route: {receiver: a\n",
		want: "$F:4: invalid YAML: did not find expected ',' or '}'",
	},
	{
		name: "a second document",
		give: okReceiver + "route: {receiver: a}\n---\nroute: {}\n",
		want: "$F:5: a second YAML document; the routing file holds one",
	},
	{
		name: "root is a list",
		give: "- receivers\n",
		want: "$F:1: want a mapping with receivers: and route: keys, not a list",
	},
	{
		name: "unknown top-level key; receivers and route missing",
		give: "global: {resolve_timeout: 5m}\n",
		want: "$F:1: unknown key \"global\" (allowed: receivers, route, silences, inhibit_rules)\n" +
			"$F:1: missing receivers: (where notifications go)\n" +
			"$F:1: missing route: (the root route, with the default receiver)",
	},
	{
		name: "receivers empty, route not a mapping",
		give: "receivers: []\nroute: ops\n",
		want: "$F:1: receivers: want at least one receiver\n" +
			"$F:2: route: want a mapping, not a single value",
	},
	{
		name: "receivers as a mapping",
		give: "receivers:\n  a: {slack: {url: {env: SLACK_BILLING_URL}}}\nroute: {receiver: a}\n",
		want: "$F:2: receivers: want a list of receivers, not a mapping\n" +
			"$F:3: route.receiver: unknown receiver \"a\" (the file defines none)",
	},
	{
		name: "receiver names: missing, bad, duplicate, not a string",
		give: `receivers:
  - slack: {url: {env: SLACK_BILLING_URL}}
  - name: Billing
    slack: {url: {env: SLACK_BILLING_URL}}
  - name: a
    slack: {url: {env: SLACK_BILLING_URL}}
  - name: a
    slack: {url: {env: SLACK_BILLING_URL}}
  - name: [b]
    slack: {url: {env: SLACK_BILLING_URL}}
route: {receiver: a}
`,
		want: "$F:2: receivers[0]: missing name:\n" +
			"$F:3: receivers[1].name: \"Billing\" must match [a-z0-9][a-z0-9_-]{0,62}\n" +
			"$F:7: receivers[3].name: duplicate name \"a\" (first on line 5)\n" +
			"$F:9: receivers[4].name: want a non-empty string, not a list",
	},
	{
		name: "receiver kinds: none, two, unknown key",
		give: `receivers:
  - name: a
  - name: b
    slack: {url: {env: SLACK_BILLING_URL}}
    email: {to: a@example.com, from: b@example.com, smarthost: "smtp.example.com:587"}
  - name: c
    slak: {url: {env: SLACK_BILLING_URL}}
route: {receiver: a}
`,
		want: "$F:2: receivers[0]: missing the way to send: one of slack:, teams:, webhook: or email:\n" +
			"$F:5: receivers[1]: slack: and email: are both set; a receiver sends one way\n" +
			"$F:6: receivers[2]: missing the way to send: one of slack:, teams:, webhook: or email:\n" +
			"$F:7: receivers[2]: unknown key \"slak\" (allowed: name, slack, teams, webhook, email, limits, templates)",
	},
	{
		name: "chat URLs: missing, pasted, unset, bad names, not a URL, both env and file",
		give: `receivers:
  - name: a
    slack: {}
  - name: b
    slack: {url: "https://hooks.slack.com/services/sekrit"}
  - name: c
    teams: {url: {env: UNSET_URL}}
  - name: d
    teams: {url: {env: TEAMS-URL}}
  - name: e
    slack: {url: {env: NOT_A_URL}}
  - name: f
    slack:
      url:
        env: SLACK_BILLING_URL
        file: secrets/url
  - name: g
    slack: {url: {value: sekrit-pasted}}
  - name: h
    teams: {url: {sekrit-pasted}, hook: x}
route: {receiver: a}
`,
		want: "$F:3: receivers[0].slack: missing url: ({env: NAME} or {file: PATH}; whoever has the URL can post)\n" +
			"$F:5: receivers[1].slack.url: secrets are never written in this file; use {env: NAME} or {file: PATH}\n" +
			"$F:7: receivers[2].teams.url.env: environment variable UNSET_URL is unset or empty\n" +
			"$F:9: receivers[3].teams.url.env: \"TEAMS-URL\" is not an environment variable name\n" +
			"$F:11: receivers[4].slack.url: the URL in environment variable NOT_A_URL is not an http(s) URL with a host\n" +
			"$F:16: receivers[5].slack.url: set env: or file:, not both\n" +
			"$F:18: receivers[6].slack.url: secrets are never written in this file; use {env: NAME} or {file: PATH}\n" +
			"$F:20: receivers[7].teams: unknown key \"hook\" (allowed: url)\n" +
			"$F:20: receivers[7].teams.url: unknown key (allowed: env, file)",
	},
	{
		name: "secret files: missing, empty, a directory",
		give: `receivers:
  - name: a
    teams: {url: {file: secrets/missing}}
  - name: b
    teams: {url: {file: secrets/empty}}
  - name: c
    teams: {url: {file: secrets}}
  - name: d
    teams: {url: {file: ""}}
route: {receiver: a}
`,
		want: "$F:3: receivers[0].teams.url.file: reading secret file $D/secrets/missing: no such file or directory\n" +
			"$F:5: receivers[1].teams.url.file: secret file $D/secrets/empty is empty\n" +
			"$F:7: receivers[2].teams.url.file: $D/secrets is not a regular file of at most 65536 bytes\n" +
			"$F:9: receivers[3].teams.url.file: want a non-empty string, not an empty string",
	},
	{
		name: "webhooks: URL and secrets",
		give: `receivers:
  - name: a
    webhook: {url: "ftp://hooks.example.com/x", secrets: []}
  - name: b
    webhook: {url: "hooks.example.com/x", secrets: {env: HOOK_SECRET}}
  - name: c
    webhook:
      url: https://hooks.example.com/x
      secrets: [{env: NOT_WHSEC}, {env: BAD_BASE64}, {env: EMPTY_KEY}, {env: HOOK_SECRET}]
  - name: d
    webhook:
      secrets:
route: {receiver: a}
`,
		want: "$F:3: receivers[0].webhook.url: \"ftp://hooks.example.com/x\" is not an http(s) URL with a host\n" +
			"$F:3: receivers[0].webhook.secrets: needs at least one secret\n" +
			"$F:5: receivers[1].webhook.url: \"hooks.example.com/x\" is not an http(s) URL with a host\n" +
			"$F:5: receivers[1].webhook.secrets: want a list of {env: NAME} or {file: PATH}, not a mapping\n" +
			"$F:9: receivers[2].webhook.secrets[0]: environment variable NOT_WHSEC: not a Standard Webhooks secret (want whsec_ followed by base64): missing the whsec_ prefix\n" +
			"$F:9: receivers[2].webhook.secrets[1]: environment variable BAD_BASE64: not a Standard Webhooks secret (want whsec_ followed by base64): illegal base64 data at input byte 6\n" +
			"$F:9: receivers[2].webhook.secrets[2]: environment variable EMPTY_KEY: not a Standard Webhooks secret (want whsec_ followed by base64): empty key\n" +
			"$F:12: receivers[3].webhook: missing url: (where to POST)\n" +
			"$F:12: receivers[3].webhook.secrets: needs at least one secret",
	},
	{
		name: "e-mail: addresses, smarthost, credentials",
		give: `receivers:
  - name: a
    email:
      to: [lead@example.com, "not an address", lead@example.com]
      from: "@example.com"
      smarthost: smtp.example.com
      username: tp
  - name: b
    email:
      to: []
      smarthost: "smtp.example.com:0"
      password: {env: SMTP_PASSWORD}
  - name: c
    email: {smarthost: ":25", cc: x@example.com}
route: {receiver: a}
`,
		want: "$F:4: receivers[0].email.to[1]: \"not an address\" is not an e-mail address\n" +
			"$F:4: receivers[0].email.to[2]: \"lead@example.com\" is listed twice (first on line 4)\n" +
			"$F:5: receivers[0].email.from: \"@example.com\" is not an e-mail address\n" +
			"$F:6: receivers[0].email.smarthost: \"smtp.example.com\" is not host:port (write e.g. smtp.example.com:587)\n" +
			"$F:7: receivers[0].email: username: is set without password: ({env: NAME} or {file: PATH})\n" +
			"$F:10: receivers[1].email.to: want at least one address, not an empty list\n" +
			"$F:10: receivers[1].email: missing from: (the sender address)\n" +
			"$F:11: receivers[1].email.smarthost: \"smtp.example.com:0\" is not host:port (write e.g. smtp.example.com:587)\n" +
			"$F:12: receivers[1].email: password: is set without username:\n" +
			"$F:14: receivers[2].email: unknown key \"cc\" (allowed: to, from, smarthost, username, password, tls)\n" +
			"$F:14: receivers[2].email: missing to: (one address or a list)\n" +
			"$F:14: receivers[2].email: missing from: (the sender address)\n" +
			"$F:14: receivers[2].email.smarthost: \":25\" is not host:port (write e.g. smtp.example.com:587)",
	},
	{
		name: "e-mail TLS modes",
		give: `receivers:
  - name: a
    email: {to: a@example.com, from: b@example.com, smarthost: "smtp.example.com:25", tls: none}
  - name: b
    email: {to: a@example.com, from: b@example.com, smarthost: "127.0.0.1:25", tls: none}
  - name: c
    email: {to: a@example.com, from: b@example.com, smarthost: "[::1]:25", tls: none}
  - name: d
    email: {to: a@example.com, from: b@example.com, smarthost: "localhost:465", tls: ssl}
route: {receiver: a}
`,
		want: "$F:3: receivers[0].email.tls: none sends mail and password in clear; it is only for a smarthost on loopback (localhost, 127.0.0.1, ::1), not smtp.example.com\n" +
			"$F:9: receivers[3].email.tls: unknown TLS mode \"ssl\" (want one of starttls, tls, none)",
	},
	{
		name: "limits",
		give: `receivers:
  - name: a
    slack: {url: {env: SLACK_BILLING_URL}}
    limits: {timeout: 10, deadline: 1h, rate_per_second: -1, burst: 0, concurrency: two, retries: 3}
  - name: b
    slack: {url: {env: SLACK_BILLING_URL}}
    limits:
      timeout: 2m
      deadline: 1m
  - name: c
    slack: {url: {env: SLACK_BILLING_URL}}
    limits: [10s]
route: {receiver: a}
`,
		want: "$F:4: receivers[0].limits: unknown key \"retries\" (allowed: timeout, deadline, rate_per_second, burst, concurrency)\n" +
			"$F:4: receivers[0].limits.timeout: \"10\" is not a duration (write e.g. 5m or 90s)\n" +
			"$F:4: receivers[0].limits.rate_per_second: want a positive number, not \"-1\"\n" +
			"$F:4: receivers[0].limits.burst: want a positive whole number, not \"0\"\n" +
			"$F:4: receivers[0].limits.concurrency: want a positive whole number, not \"two\"\n" +
			"$F:9: receivers[1].limits: the deadline (1m) is shorter than one attempt's timeout (2m)\n" +
			"$F:12: receivers[2].limits: want a mapping, not a list",
	},
	{
		name: "templates",
		give: `receivers:
  - name: a
    slack: {url: {env: SLACK_BILLING_URL}}
    templates:
      title: "{{ .ID"
      text: "{{ shout .ID }}"
      html: "{{ if .ID }}"
      subject: x
  - name: b
    slack: {url: {env: SLACK_BILLING_URL}}
    templates: {title: ""}
route: {receiver: a}
`,
		want: "$F:5: receivers[0].templates.title: title template: template: a.title:1: unclosed action\n" +
			"$F:6: receivers[0].templates.text: text template: template: a.text:1: function \"shout\" not defined\n" +
			"$F:7: receivers[0].templates.html: html template: template: a.html:1: unexpected EOF\n" +
			"$F:8: receivers[0].templates: unknown key \"subject\" (allowed: title, text, html, link)\n" +
			"$F:11: receivers[1].templates.title: want a non-empty string, not an empty string",
	},
	{
		name: "root route: receiver missing, matchers and continue refused",
		give: okReceiver + "route:\n  matchers: ['tenant=\"acme\"']\n  continue: true\n  group_wait: -1s\n",
		want: "$F:5: route: missing receiver: (the default for escalations no other route takes)\n" +
			"$F:5: route: the root route takes every escalation; put matchers: on its routes\n" +
			"$F:6: route: continue: does not apply to the root route, which has no siblings\n" +
			"$F:7: route.group_wait: -1s is not positive",
	},
	{
		name: "unknown receivers; a broken receiver's name is still known",
		give: `receivers:
  - name: a
    slack: {url: {env: SLACK_BILLING_URL}}
  - name: broken
    slack: {url: {env: UNSET_URL}}
route:
  receiver: nobody
  routes:
    - {matchers: 'team="x"', receiver: broken}
    - {matchers: 'team="y"', receiver: [a]}
    - {matchers: 'team="z"', reciever: a}
`,
		want: "$F:5: receivers[1].slack.url.env: environment variable UNSET_URL is unset or empty\n" +
			"$F:7: route.receiver: unknown receiver \"nobody\" (want one of a, broken)\n" +
			"$F:10: route.routes[1].receiver: want a non-empty string, not a list\n" +
			"$F:11: route.routes[2]: unknown key \"reciever\" (allowed: receiver, matchers, continue, group_by, group_wait, group_interval, repeat_interval, quiet_hours, routes)",
	},
	{
		name: "group_by",
		give: okReceiver + `route:
  receiver: a
  group_by: [tenant, team-name, tenant, ""]
  routes:
    - {matchers: 'team="x"', group_by: [..., tenant]}
    - {matchers: 'team="y"', group_by: {tenant: true}}
    - {matchers: 'team="z"', group_by: 9lives}
`,
		want: "$F:6: route.group_by[1]: label name \"team-name\" must match [A-Za-z_][A-Za-z0-9_]*\n" +
			"$F:6: route.group_by[2]: \"tenant\" is listed twice (first on line 6)\n" +
			"$F:6: route.group_by[3]: want a non-empty string, not an empty string\n" +
			"$F:8: route.routes[0].group_by: \"...\" groups by every label, so it stands alone\n" +
			"$F:9: route.routes[1].group_by: want a single value or a list, not a mapping\n" +
			"$F:10: route.routes[2].group_by: label name \"9lives\" must match [A-Za-z_][A-Za-z0-9_]*",
	},
	{
		name: "group timing",
		give: okReceiver + `route:
  receiver: a
  group_wait: soon
  group_interval: 500ms
  repeat_interval: 30s
  routes:
    - {matchers: 'team="x"', group_wait: 0, group_interval: 0s, repeat_interval: 1d}
`,
		want: "$F:6: route.group_wait: \"soon\" is not a duration (write e.g. 90s, 15m, 4h or 3d)\n" +
			"$F:7: route.group_interval: 500ms is less than the minimum of 1s\n" +
			"$F:8: route.repeat_interval: 30s is less than the minimum of 1m\n" +
			"$F:10: route.routes[0].group_interval: 0s is not positive",
	},
	{
		name: "matchers",
		give: okReceiver + `route:
  receiver: a
  routes:
    - matchers: ['tenant=="acme"', 'tenant=acme', 'team=~"(billing"', '="x"', 'severity ~ "info"']
    - matchers: []
    - matchers: ['team="x"', 'team = "x"', {team: x}]
    - matchers: 'team-name="x"'
    - matchers: 'team="x" or team="y"'
    - matchers: 'team'
`,
		want: "$F:7: route.routes[0].matchers[0]: unknown operator \"==\" (want =, !=, =~ or !~)\n" +
			"$F:7: route.routes[0].matchers[1]: the value must be in double quotes (label=\"value\")\n" +
			"$F:7: route.routes[0].matchers[2]: bad regular expression: missing closing ): `(billing`\n" +
			"$F:7: route.routes[0].matchers[3]: missing the label name (want label=\"value\")\n" +
			"$F:7: route.routes[0].matchers[4]: unknown operator \"~\" (want =, !=, =~ or !~)\n" +
			"$F:8: route.routes[1].matchers: want at least one matcher (leave matchers: out to match everything), not an empty list\n" +
			"$F:9: route.routes[2].matchers[1]: team=\"x\" is listed twice (first on line 9)\n" +
			"$F:9: route.routes[2].matchers[2]: want a non-empty string, not a mapping\n" +
			"$F:10: route.routes[3].matchers: label name \"team-name\" must match [A-Za-z_][A-Za-z0-9_]*\n" +
			"$F:11: route.routes[4].matchers: the value must be one double-quoted string, with \\\" and \\\\ escaped\n" +
			"$F:12: route.routes[5].matchers: want label=\"value\" (or !=, =~, !~)",
	},
	{
		name: "continue and routes",
		give: okReceiver + `route:
  receiver: a
  routes:
    - {matchers: 'team="x"', continue: yes}
    - {matchers: 'team="y"', continue: "true", routes: {a: b}}
    - [receiver, a]
`,
		want: "$F:7: route.routes[0].continue: want true or false, not \"yes\"\n" +
			"$F:8: route.routes[1].continue: want true or false, not \"true\"\n" +
			"$F:8: route.routes[1].routes: want a list of routes, not a mapping\n" +
			"$F:9: route.routes[2]: want a mapping, not a list",
	},
	{
		name: "a route that contains itself through an alias",
		give: okReceiver + "route: &r\n  receiver: a\n  routes: [*r]\n",
		want: "$F:4: route.routes[0]: the route contains itself (through an alias)",
	},
	{
		name: "quiet hours: zone and keys",
		give: okReceiver + `route:
  receiver: a
  quiet_hours: {}
  routes:
    - matchers: 'team="x"'
      quiet_hours: {time_zone: Europe/Berlinn, hours: {mon: "00:00-08:00"}, holidays: [2026-12-25]}
    - matchers: 'team="y"'
      quiet_hours: {time_zone: Local, hours: {}}
    - matchers: 'team="z"'
      quiet_hours: nights
`,
		want: "$F:6: route.quiet_hours: missing time_zone: (an IANA name such as Europe/Berlin)\n" +
			"$F:6: route.quiet_hours: missing hours: (when to hold notifications back, e.g. mon-fri: [\"00:00-08:00\", \"18:00-24:00\"])\n" +
			"$F:9: route.routes[0].quiet_hours: unknown key \"holidays\" (allowed: time_zone, hours)\n" +
			"$F:9: route.routes[0].quiet_hours.time_zone: unknown time zone \"Europe/Berlinn\" (want an IANA name such as Europe/Berlin)\n" +
			"$F:11: route.routes[1].quiet_hours.time_zone: name the zone (e.g. Europe/Berlin) rather than the host's Local\n" +
			"$F:11: route.routes[1].quiet_hours.hours: no quiet hours on any day\n" +
			"$F:13: route.routes[2].quiet_hours: want a mapping, not a single value",
	},
	{
		name: "quiet hours: hours",
		give: okReceiver + `route:
  receiver: a
  quiet_hours:
    time_zone: Europe/Berlin
    hours:
      mon-fri: ["00:00-08:00", "07:00-09:00"]
      fri: "18:00-24:00"
      sun-sat: "00:00-24:00"
      sat: ["8-18", "18:00-08:00", "23:00-24:30"]
      sun: []
`,
		want: "$F:9: route.quiet_hours.hours.mon-fri[1]: 07:00-09:00 overlaps 00:00-08:00\n" +
			"$F:10: route.quiet_hours.hours: fri already has hours (line 9)\n" +
			"$F:11: route.quiet_hours.hours: unknown day \"sun-sat\" (want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri)\n" +
			"$F:12: route.quiet_hours.hours.sat[0]: \"8-18\" is not a time range (write e.g. 09:00-17:00)\n" +
			"$F:12: route.quiet_hours.hours.sat[1]: \"18:00-08:00\" does not end after it starts\n" +
			"$F:12: route.quiet_hours.hours.sat[2]: \"23:00-24:30\" is not a time range (times run from 00:00 to 24:00)\n" +
			"$F:13: route.quiet_hours.hours.sun: want at least one time range, not an empty list",
	},
	{
		name: "silences",
		give: okReceiver + `route: {receiver: a}
silences:
  - {}
  - matchers: ['rule=~".*"', 'team!="x"']
    starts: 2026-12-24
    ends: 2026-12-27T00:00:00Z
    comment: ""
  - matchers: 'rule="r"'
    starts: 2026-12-27T00:00:00+01:00
    ends: 2026-12-26T23:00:00Z
    comment: typo
    author: me
`,
		want: "$F:6: silences[0]: missing matchers: (which escalations to silence)\n" +
			"$F:6: silences[0]: missing starts: (an RFC 3339 time, e.g. 2026-12-24T00:00:00Z)\n" +
			"$F:6: silences[0]: missing ends: (an RFC 3339 time, e.g. 2026-12-27T00:00:00Z)\n" +
			"$F:6: silences[0]: missing comment: (why, and who to ask)\n" +
			"$F:7: silences[1].matchers: these match an escalation without labels, so they would silence everything; add one that needs a value\n" +
			"$F:8: silences[1].starts: \"2026-12-24\" is not an RFC 3339 time (write e.g. 2026-12-24T00:00:00Z)\n" +
			"$F:10: silences[1].comment: want a non-empty string, not an empty string\n" +
			"$F:13: silences[2].ends: 2026-12-26T23:00:00Z is not after starts: 2026-12-27T00:00:00+01:00\n" +
			"$F:15: silences[2]: unknown key \"author\" (allowed: matchers, starts, ends, comment)",
	},
	{
		name: "silences and inhibit rules not lists",
		give: okReceiver + "route: {receiver: a}\nsilences: {x: 1}\ninhibit_rules: x\n",
		want: "$F:5: silences: want a list of silences, not a mapping\n" +
			"$F:6: inhibit_rules: want a list of inhibit rules, not a single value",
	},
	{
		name: "inhibit rules",
		give: okReceiver + `route: {receiver: a}
inhibit_rules:
  - equal: [tenant, agent-id, tenant]
  - source_matchers: []
    target_matchers: 'subject_kind="ticket'
    equal: ""
    when: always
`,
		want: "$F:6: inhibit_rules[0]: missing source_matchers: (the open escalations that inhibit)\n" +
			"$F:6: inhibit_rules[0]: missing target_matchers: (the escalations they hold back)\n" +
			"$F:6: inhibit_rules[0].equal[1]: label name \"agent-id\" must match [A-Za-z_][A-Za-z0-9_]*\n" +
			"$F:6: inhibit_rules[0].equal[2]: \"tenant\" is listed twice (first on line 6)\n" +
			"$F:7: inhibit_rules[1].source_matchers: want at least one matcher, not an empty list\n" +
			"$F:8: inhibit_rules[1].target_matchers: the value must be one double-quoted string, with \\\" and \\\\ escaped\n" +
			"$F:9: inhibit_rules[1].equal: want a non-empty string, not an empty string\n" +
			"$F:10: inhibit_rules[1]: unknown key \"when\" (allowed: source_matchers, target_matchers, equal)",
	},
}

// rejectDir is a directory with the secret files the reject tests read.
func rejectDir(t testing.TB) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "empty"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReject(t *testing.T) {
	if len(rejectTests) < 25 {
		t.Fatalf("only %d reject tests", len(rejectTests))
	}
	dir := rejectDir(t)
	for _, tt := range rejectTests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("routing.yaml", dir, []byte(tt.give), getenv)
			var probs Problems
			if !errors.As(err, &probs) || cfg != nil {
				t.Fatalf("Parse = %v, %v; want Problems", cfg, err)
			}
			want := strings.NewReplacer("$F", "routing.yaml", "$D", dir).Replace(tt.want)
			if got := err.Error(); got != want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, want)
			}
			if strings.Contains(err.Error(), "sekrit") {
				t.Errorf("a secret leaked into the problems:\n%v", err)
			}
		})
	}
}
