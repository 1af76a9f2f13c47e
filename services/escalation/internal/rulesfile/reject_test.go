package rulesfile

import (
	"errors"
	"strings"
	"testing"
)

// rejectTests are bad files and the exact problems Parse reports for them; $F is the file name.
var rejectTests = []struct {
	name string
	give string
	want string
}{
	{
		name: "empty file",
		give: "# no rules yet\n",
		want: "$F:1: the file is empty; want a mapping with a tenants: key",
	},
	{
		name: "YAML syntax error",
		give: "tenants:\n  acme:\n    sla_policies: [x\n",
		want: "$F:3: invalid YAML: did not find expected ',' or ']'",
	},
	{
		name: "tab indentation",
		give: "tenants:\n\tacme: {}\n",
		want: "$F:2: invalid YAML: found character that cannot start any token",
	},
	{
		name: "a second document",
		give: "tenants: {}\n---\ntenants: {}\n",
		want: "$F:2: a second YAML document; the rules file holds one",
	},
	{
		name: "root is a list",
		give: "- acme\n",
		want: "$F:1: want a mapping with a tenants: key, not a list",
	},
	{
		name: "defaults are not supported, and tenants is missing",
		give: "defaults:\n  at_risk: 80%\n",
		want: "$F:1: unknown key \"defaults\" (allowed: tenants)\n" +
			"$F:1: missing tenants: (the tenants and their rules)",
	},
	{
		name: "tenants is a list",
		give: "tenants:\n  - acme\n",
		want: "$F:2: tenants: want a mapping, not a list",
	},
	{
		name: "bad and duplicate tenant ids; a bad tenant is still checked",
		give: "tenants:\n  Acme:\n    sla_policy: []\n  acme: {}\n  acme: {}\n",
		want: "$F:2: tenants: tenant id \"Acme\" must match [a-z0-9][a-z0-9_-]{0,62}\n" +
			"$F:3: tenants.Acme: unknown key \"sla_policy\" (allowed: calendars, escalation_policies, sla_policies, quality_rules, call_service_level)\n" +
			"$F:5: tenants: duplicate key \"acme\" (first on line 4)",
	},
	{
		name: "tenant is a list",
		give: "tenants:\n  acme: [calendars]\n",
		want: "$F:2: tenants.acme: want a mapping, not a list",
	},
	{
		name: "calendar without zone and hours",
		give: "tenants:\n  acme:\n    calendars:\n      office: {}\n",
		want: "$F:4: tenants.acme.calendars.office: missing time_zone: (an IANA name such as Europe/Berlin)\n" +
			"$F:4: tenants.acme.calendars.office: missing hours: (the working hours, e.g. mon-fri: 09:00-17:00)",
	},
	{
		name: "calendar names and zones",
		give: `tenants:
  acme:
    calendars:
      Office:
        time_zone: Europe/Berlinn
        hours: {mon: 09:00-17:00}
      local:
        time_zone: Local
        hours: {mon: 09:00-17:00}
      list:
        time_zone: [UTC]
        hours: {mon: 09:00-17:00}
        holiday: 2026-12-25
`,
		want: "$F:4: tenants.acme.calendars: name \"Office\" must match [a-z0-9][a-z0-9_-]{0,62}\n" +
			"$F:5: tenants.acme.calendars.Office.time_zone: unknown time zone \"Europe/Berlinn\" (want an IANA name such as Europe/Berlin)\n" +
			"$F:8: tenants.acme.calendars.local.time_zone: name the zone (e.g. Europe/Berlin) rather than the host's Local\n" +
			"$F:11: tenants.acme.calendars.list.time_zone: want a non-empty string, not a list\n" +
			"$F:13: tenants.acme.calendars.list: unknown key \"holiday\" (allowed: time_zone, hours, holidays)",
	},
	{
		name: "hours",
		give: `tenants:
  acme:
    calendars:
      office:
        time_zone: UTC
        hours:
          mon-fri: "09:00-17:00"
          fri: "10:00-12:00"
          fri-mon: "10:00-12:00"
          sun: ["09:00-17:00", "12:00-13:00", "9-17"]
          sat: ["18:00-09:00", "10:00-24:30", "08:00-08:00", "24:00-24:00"]
          holiday: "10:00-12:00"
          mon-mon: "10:00-12:00"
          tue-wed: []
          thu: {from: "09:00"}
`,
		want: "$F:8: tenants.acme.calendars.office.hours: fri already has hours (line 7)\n" +
			"$F:9: tenants.acme.calendars.office.hours: unknown day \"fri-mon\" (want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri)\n" +
			"$F:10: tenants.acme.calendars.office.hours.sun[1]: 12:00-13:00 overlaps 09:00-17:00\n" +
			"$F:10: tenants.acme.calendars.office.hours.sun[2]: \"9-17\" is not a time range (write e.g. 09:00-17:00)\n" +
			"$F:11: tenants.acme.calendars.office.hours.sat[0]: \"18:00-09:00\" does not end after it starts\n" +
			"$F:11: tenants.acme.calendars.office.hours.sat[1]: \"10:00-24:30\" is not a time range (times run from 00:00 to 24:00)\n" +
			"$F:11: tenants.acme.calendars.office.hours.sat[2]: \"08:00-08:00\" does not end after it starts\n" +
			"$F:11: tenants.acme.calendars.office.hours.sat[3]: \"24:00-24:00\" is not a time range (times run from 00:00 to 24:00)\n" +
			"$F:12: tenants.acme.calendars.office.hours: unknown day \"holiday\" (want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri)\n" +
			"$F:13: tenants.acme.calendars.office.hours: unknown day \"mon-mon\" (want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri)\n" +
			"$F:14: tenants.acme.calendars.office.hours: tue already has hours (line 7)\n" +
			"$F:14: tenants.acme.calendars.office.hours: wed already has hours (line 7)\n" +
			"$F:14: tenants.acme.calendars.office.hours.tue-wed: want at least one time range, not an empty list\n" +
			"$F:15: tenants.acme.calendars.office.hours: thu already has hours (line 7)\n" +
			"$F:15: tenants.acme.calendars.office.hours.thu: want a single value or a list, not a mapping",
	},
	{
		name: "no hours at all, and bad holidays",
		give: `tenants:
  acme:
    calendars:
      a:
        time_zone: UTC
        hours: {}
        holidays: [2026-13-01, christmas, 2026-12-25, "2026-12-25"]
      b:
        time_zone: UTC
        hours:
        holidays: {christmas: 2026-12-25}
`,
		want: "$F:6: tenants.acme.calendars.a.hours: no working hours on any day\n" +
			"$F:7: tenants.acme.calendars.a.holidays[0]: \"2026-13-01\" is not a date (write YYYY-MM-DD)\n" +
			"$F:7: tenants.acme.calendars.a.holidays[1]: \"christmas\" is not a date (write YYYY-MM-DD)\n" +
			"$F:7: tenants.acme.calendars.a.holidays[3]: \"2026-12-25\" is listed twice (first on line 7)\n" +
			"$F:10: tenants.acme.calendars.b.hours: no working hours on any day\n" +
			"$F:11: tenants.acme.calendars.b.holidays: want a single value or a list, not a mapping",
	},
	{
		name: "escalation policies",
		give: `tenants:
  acme:
    escalation_policies:
      a: {}
      b: {levels: []}
      c:
        levels:
          - targets: ["team lead", ok, ok]
          - targets: []
            ack_timeout: 0
          - {targets: x, ack_timeout: 10s}
        repeat: 30s
        reapeat: 1h
      D:
        levels: {targets: x}
      e:
        levels:
          - ack_timeout: 1h
          - targets: x
            ack_timeout: soon
`,
		want: "$F:4: tenants.acme.escalation_policies.a: missing levels: (whom to notify, in order)\n" +
			"$F:5: tenants.acme.escalation_policies.b.levels: want at least one level\n" +
			"$F:8: tenants.acme.escalation_policies.c.levels[0].targets[0]: \"team lead\" is not a target label (letters, digits and _ . @ - only)\n" +
			"$F:8: tenants.acme.escalation_policies.c.levels[0].targets[2]: \"ok\" is listed twice (first on line 8)\n" +
			"$F:8: tenants.acme.escalation_policies.c.levels[0]: missing ack_timeout: (every level but the last needs one)\n" +
			"$F:9: tenants.acme.escalation_policies.c.levels[1].targets: want at least one target, not an empty list\n" +
			"$F:10: tenants.acme.escalation_policies.c.levels[1].ack_timeout: 0 is not positive\n" +
			"$F:11: tenants.acme.escalation_policies.c.levels[2].ack_timeout: 10s is less than the minimum of 1m\n" +
			"$F:12: tenants.acme.escalation_policies.c.repeat: 30s is less than the minimum of 1m\n" +
			"$F:13: tenants.acme.escalation_policies.c: unknown key \"reapeat\" (allowed: levels, repeat, history_horizon)\n" +
			"$F:14: tenants.acme.escalation_policies: name \"D\" must match [a-z0-9][a-z0-9_-]{0,62}\n" +
			"$F:15: tenants.acme.escalation_policies.D.levels: want a list of levels, not a mapping\n" +
			"$F:18: tenants.acme.escalation_policies.e.levels[0]: missing targets: (the labels notify routes on, e.g. [team-lead])\n" +
			"$F:20: tenants.acme.escalation_policies.e.levels[1].ack_timeout: \"soon\" is not a duration (write e.g. 90s, 15m, 4h or 3d)",
	},
	{
		name: "history horizons",
		give: `tenants:
  acme:
    escalation_policies:
      a: {levels: [{targets: x}], history_horizon: -1h}
      b: {levels: [{targets: x}], history_horizon: a day}
      c: {levels: [{targets: x}], history_horizon: 30s}
      d: {levels: [{targets: x}], history_horizon: -2d}
      e: {levels: [{targets: x}], history_horizon: [24h]}
      f: {levels: [{targets: x}], history_horizon: ~}
      g: {levels: [{targets: x}], history_horizon: 24}
      h:
        history_horizon: -0.5h
`,
		want: "$F:4: tenants.acme.escalation_policies.a.history_horizon: -1h is negative (write 0 to raise every breach, however old)\n" +
			"$F:5: tenants.acme.escalation_policies.b.history_horizon: \"a day\" is not a duration (write e.g. 90s, 15m, 4h or 3d)\n" +
			"$F:6: tenants.acme.escalation_policies.c.history_horizon: 30s is less than the minimum of 1m\n" +
			"$F:7: tenants.acme.escalation_policies.d.history_horizon: \"-2d\" is not a duration (write e.g. 90s, 15m, 4h or 3d)\n" +
			"$F:8: tenants.acme.escalation_policies.e.history_horizon: want a non-empty string, not a list\n" +
			"$F:9: tenants.acme.escalation_policies.f.history_horizon: want a non-empty string, not nothing\n" +
			"$F:10: tenants.acme.escalation_policies.g.history_horizon: \"24\" is not a duration (write e.g. 90s, 15m, 4h or 3d)\n" +
			"$F:12: tenants.acme.escalation_policies.h: missing levels: (whom to notify, in order)\n" +
			"$F:12: tenants.acme.escalation_policies.h.history_horizon: -0.5h is negative (write 0 to raise every breach, however old)",
	},
	{
		name: "SLA policy without its required keys",
		give: "tenants:\n  acme:\n    sla_policies: [{}, ~]\n",
		want: "$F:3: tenants.acme.sla_policies[0]: missing name:\n" +
			"$F:3: tenants.acme.sla_policies[0]: missing escalation: (the escalation policy to raise)\n" +
			"$F:3: tenants.acme.sla_policies[0]: missing targets: (the SLA targets by priority)\n" +
			"$F:3: tenants.acme.sla_policies[1]: missing name:\n" +
			"$F:3: tenants.acme.sla_policies[1]: missing escalation: (the escalation policy to raise)\n" +
			"$F:3: tenants.acme.sla_policies[1]: missing targets: (the SLA targets by priority)",
	},
	{
		name: "SLA policies not a list",
		give: "tenants:\n  acme:\n    sla_policies:\n      vip: {}\n",
		want: "$F:4: tenants.acme.sla_policies: want a list of SLA policies, not a mapping",
	},
	{
		name: "dangling references",
		give: `tenants:
  acme:
    escalation_policies:
      default: {levels: [{targets: lead}]}
      urgent: {levels: [{targets: lead}]}
    sla_policies:
      - name: vip
        calendar: berlin
        escalation: defualt
        targets: {default: {resolution: 1d}}
  beta:
    sla_policies:
      - name: vip
        escalation: default
        targets: {default: {resolution: 1d}}
`,
		want: "$F:8: tenants.acme.sla_policies[0].calendar: unknown calendar \"berlin\" (the tenant defines none)\n" +
			"$F:9: tenants.acme.sla_policies[0].escalation: unknown escalation policy \"defualt\" (want one of default, urgent)\n" +
			"$F:14: tenants.beta.sla_policies[0].escalation: unknown escalation policy \"default\" (the tenant defines none)",
	},
	{
		name: "a reference to a broken definition is not also unknown",
		give: `tenants:
  acme:
    calendars:
      office: {time_zone: Mars/Olympus, hours: {mon: 09:00-17:00}}
    escalation_policies:
      default: {levels: []}
    sla_policies:
      - {name: vip, calendar: office, escalation: default, targets: {default: {resolution: 1d}}}
`,
		want: "$F:4: tenants.acme.calendars.office.time_zone: unknown time zone \"Mars/Olympus\" (want an IANA name such as Europe/Berlin)\n" +
			"$F:6: tenants.acme.escalation_policies.default.levels: want at least one level",
	},
	{
		name: "SLA policy names",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    sla_policies:
      - {name: vip, escalation: e, targets: {default: {resolution: 1d}}}
      - {name: vip, escalation: e, targets: {default: {resolution: 1d}}}
      - {name: VIP!, escalation: e, targets: {default: {resolution: 1d}}}
      - {name: [vip], escalation: e, targets: {default: {resolution: 1d}}}
`,
		want: "$F:6: tenants.acme.sla_policies[1].name: duplicate name \"vip\" (first on line 5)\n" +
			"$F:7: tenants.acme.sla_policies[2].name: \"VIP!\" must match [a-z0-9][a-z0-9_-]{0,62}\n" +
			"$F:8: tenants.acme.sla_policies[3].name: want a non-empty string, not a list",
	},
	{
		name: "match",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    sla_policies:
      - name: vip
        escalation: e
        targets: {default: {resolution: 1d}}
        match:
          priority: [urgent, asap, URGENT, urgent]
          team: []
          tag: [vip, vip]
          channel: {email: true}
          teams: [billing]
`,
		want: "$F:9: tenants.acme.sla_policies[0].match.priority[1]: unknown priority \"asap\" (want one of low, normal, high, urgent)\n" +
			"$F:9: tenants.acme.sla_policies[0].match.priority[2]: unknown priority \"URGENT\" (want one of low, normal, high, urgent)\n" +
			"$F:9: tenants.acme.sla_policies[0].match.priority[3]: \"urgent\" is listed twice (first on line 9)\n" +
			"$F:10: tenants.acme.sla_policies[0].match.team: want at least one team (leave team: out to match any), not an empty list\n" +
			"$F:11: tenants.acme.sla_policies[0].match.tag[1]: \"vip\" is listed twice (first on line 11)\n" +
			"$F:12: tenants.acme.sla_policies[0].match.channel: want a single value or a list, not a mapping\n" +
			"$F:13: tenants.acme.sla_policies[0].match: unknown key \"teams\" (allowed: priority, team, channel, tag)",
	},
	{
		name: "pause statuses and at_risk",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    sla_policies:
      - name: a
        escalation: e
        targets: {default: {resolution: 1d}}
        pause_statuses: [pending, solved, waiting, pending]
        at_risk: 1
      - name: b
        escalation: e
        targets: {default: {resolution: 1d}}
        pause_statuses: closed
        at_risk: 120%
      - name: c
        escalation: e
        targets: {default: {resolution: 1d}}
        pause_statuses:
        at_risk: false
      - {name: d, escalation: e, targets: {default: {resolution: 1d}}, at_risk: 0}
      - {name: f, escalation: e, targets: {default: {resolution: 1d}}, at_risk: "off%"}
`,
		want: "$F:8: tenants.acme.sla_policies[0].pause_statuses[1]: solved cannot pause the clocks: they stop for good when a ticket is solved or closed\n" +
			"$F:8: tenants.acme.sla_policies[0].pause_statuses[2]: unknown status \"waiting\" (want one of new, open, pending, on_hold)\n" +
			"$F:8: tenants.acme.sla_policies[0].pause_statuses[3]: \"pending\" is listed twice (first on line 8)\n" +
			"$F:9: tenants.acme.sla_policies[0].at_risk: want a share between 0 and 1 such as 0.8 or 80%, or off; not \"1\"\n" +
			"$F:13: tenants.acme.sla_policies[1].pause_statuses: closed cannot pause the clocks: they stop for good when a ticket is solved or closed\n" +
			"$F:14: tenants.acme.sla_policies[1].at_risk: want a share between 0 and 1 such as 0.8 or 80%, or off; not \"120%\"\n" +
			"$F:18: tenants.acme.sla_policies[2].pause_statuses: want a single value or a list, not nothing\n" +
			"$F:19: tenants.acme.sla_policies[2].at_risk: want a share between 0 and 1 such as 0.8 or 80%, or off; not \"false\"\n" +
			"$F:20: tenants.acme.sla_policies[3].at_risk: want a share between 0 and 1 such as 0.8 or 80%, or off; not \"0\"\n" +
			"$F:21: tenants.acme.sla_policies[4].at_risk: want a share between 0 and 1 such as 0.8 or 80%, or off; not \"off%\"",
	},
	{
		name: "targets",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    sla_policies:
      - name: a
        escalation: e
        targets: {}
      - name: b
        escalation: e
        targets:
          critical: {resolution: 1h}
          urgent: {}
          high: {first_response: 30s, next_response: 0, resolution: 3 days, resolve: 1h}
          low: 4h
      - name: c
        escalation: e
        targets: [urgent]
`,
		want: "$F:7: tenants.acme.sla_policies[0].targets: want at least one of low, normal, high, urgent, default\n" +
			"$F:11: tenants.acme.sla_policies[1].targets: unknown priority \"critical\" (want one of low, normal, high, urgent, default)\n" +
			"$F:12: tenants.acme.sla_policies[1].targets.urgent: set at least one of first_response, next_response, resolution\n" +
			"$F:13: tenants.acme.sla_policies[1].targets.high: unknown key \"resolve\" (allowed: first_response, next_response, resolution)\n" +
			"$F:13: tenants.acme.sla_policies[1].targets.high.first_response: 30s is less than the minimum of 1m\n" +
			"$F:13: tenants.acme.sla_policies[1].targets.high.next_response: 0 is not positive\n" +
			"$F:13: tenants.acme.sla_policies[1].targets.high.resolution: \"3 days\" is not a duration (write e.g. 90s, 15m, 4h or 3d)\n" +
			"$F:14: tenants.acme.sla_policies[1].targets.low: want a mapping, not a single value\n" +
			"$F:17: tenants.acme.sla_policies[2].targets: want a mapping, not a list",
	},
	{
		name: "quality rules not a list",
		give: "tenants:\n  acme:\n    quality_rules: {bad: {kind: reopens}}\n",
		want: "$F:3: tenants.acme.quality_rules: want a list of quality rules, not a mapping",
	},
	{
		name: "quality rule kind missing or unknown: every kind's keys are taken",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    quality_rules:
      - {name: a, escalation: e, max_score: 2}
      - {name: b, kind: csat, escalation: e, metric: csat_mean, colour: red}
`,
		want: "$F:5: tenants.acme.quality_rules[0]: missing kind: (one of bad_rating, reopens, kpi, kpi_baseline)\n" +
			"$F:6: tenants.acme.quality_rules[1].kind: unknown kind \"csat\" (want one of bad_rating, reopens, kpi, kpi_baseline)\n" +
			"$F:6: tenants.acme.quality_rules[1]: unknown key \"colour\" (allowed: name, kind, severity, escalation, match, max_score, min_reopens, scope, metric, window, above, below, drop, min_sample)",
	},
	{
		name: "keys that do not apply to the rule's kind",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    quality_rules:
      - name: a
        kind: kpi
        metric: csat_mean
        window: 7d
        below: 3.5
        max_score: 2
        drop: 20%
        match: {team: billing}
        escalation: e
      - name: b
        kind: kpi_baseline
        metric: csat_mean
        window: 7d
        drop: 20%
        above: 4
        escalation: e
      - {name: c, kind: bad_rating, max_score: 2, min_reopens: 2, window: 7d, escalation: e}
      - {name: d, kind: reopens, min_reopens: 2, max_score: 2, escalation: e, metrics: x}
`,
		want: "$F:10: tenants.acme.quality_rules[0]: max_score does not apply to kind kpi\n" +
			"$F:11: tenants.acme.quality_rules[0]: drop does not apply to kind kpi\n" +
			"$F:12: tenants.acme.quality_rules[0]: match does not apply to kind kpi\n" +
			"$F:19: tenants.acme.quality_rules[1]: above does not apply to kind kpi_baseline\n" +
			"$F:21: tenants.acme.quality_rules[2]: min_reopens does not apply to kind bad_rating\n" +
			"$F:21: tenants.acme.quality_rules[2]: window does not apply to kind bad_rating\n" +
			"$F:22: tenants.acme.quality_rules[3]: max_score does not apply to kind reopens\n" +
			"$F:22: tenants.acme.quality_rules[3]: unknown key \"metrics\" (allowed: name, kind, severity, escalation, match, min_reopens)",
	},
	{
		name: "quality rule names, severity and escalation",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    quality_rules:
      - {name: sla-resolution, kind: reopens, min_reopens: 2, escalation: e}
      - {name: r, kind: reopens, min_reopens: 2, escalation: e, severity: high}
      - {name: r, kind: reopens, min_reopens: 2}
      - {kind: reopens, min_reopens: 2, escalation: f}
`,
		want: "$F:5: tenants.acme.quality_rules[0].name: \"sla-resolution\" is reserved for the SLA rules\n" +
			"$F:6: tenants.acme.quality_rules[1].severity: unknown severity \"high\" (want one of info, warning, critical)\n" +
			"$F:7: tenants.acme.quality_rules[2].name: duplicate name \"r\" (first on line 6)\n" +
			"$F:7: tenants.acme.quality_rules[2]: missing escalation: (the escalation policy to raise)\n" +
			"$F:8: tenants.acme.quality_rules[3]: missing name:\n" +
			"$F:8: tenants.acme.quality_rules[3].escalation: unknown escalation policy \"f\" (want one of e)",
	},
	{
		name: "bad_rating and reopens values",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    quality_rules:
      - {name: a, kind: bad_rating, max_score: 5, escalation: e}
      - {name: b, kind: bad_rating, max_score: "2", escalation: e}
      - {name: c, kind: bad_rating, escalation: e, match: {priority: top}}
      - {name: d, kind: reopens, min_reopens: 0, escalation: e}
      - {name: f, kind: reopens, escalation: e}
`,
		want: "$F:5: tenants.acme.quality_rules[0].max_score: want a whole number from 1 to 4, not \"5\"\n" +
			"$F:6: tenants.acme.quality_rules[1].max_score: want a whole number from 1 to 4, not \"2\"\n" +
			"$F:7: tenants.acme.quality_rules[2].match.priority: unknown priority \"top\" (want one of low, normal, high, urgent)\n" +
			"$F:7: tenants.acme.quality_rules[2]: missing max_score: (ratings from 1 to max_score are bad)\n" +
			"$F:8: tenants.acme.quality_rules[3].min_reopens: want a positive whole number, not \"0\"\n" +
			"$F:9: tenants.acme.quality_rules[4]: missing min_reopens: (how many reopens make a ticket bad)",
	},
	{
		name: "kpi rule settings",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    quality_rules:
      - {name: a, kind: kpi, escalation: e, below: 0.5}
      - {name: b, kind: kpi, escalation: e, metric: speed, window: 2d, scope: org, above: 1, min_sample: 0}
      - {name: c, kind: kpi, escalation: e, metric: reopen_rate, window: 7d, above: 0.2, below: 0.1}
      - {name: d, kind: kpi, escalation: e, metric: reopen_rate, window: 7d}
`,
		want: "$F:5: tenants.acme.quality_rules[0]: missing metric: (one of first_response_mean, first_response_p50, first_response_p90, first_response_p99, " +
			"next_response_mean, next_response_p50, next_response_p90, next_response_p99, resolution_mean, resolution_p50, resolution_p90, resolution_p99, " +
			"resolution_rate, reopen_rate, one_touch_rate, csat_mean, csat_percent, sla_first_response_compliance, " +
			"qa_score_mean, qa_score_p50, qa_score_p90, qa_score_p99, qa_auto_fail_rate, " +
			"call_abandon_rate, call_service_level, call_asa_mean, call_asa_p50, call_asa_p90, call_asa_p99, " +
			"call_aht_mean, call_aht_p50, call_aht_p90, call_aht_p99)\n" +
			"$F:5: tenants.acme.quality_rules[0]: missing window: (one of 1h, 24h, 7d, 30d)\n" +
			"$F:6: tenants.acme.quality_rules[1].scope: unknown scope \"org\" (want one of agent, team, queue)\n" +
			"$F:6: tenants.acme.quality_rules[1].metric: unknown metric \"speed\" (want one of first_response_mean, first_response_p50, first_response_p90, first_response_p99, " +
			"next_response_mean, next_response_p50, next_response_p90, next_response_p99, resolution_mean, resolution_p50, resolution_p90, resolution_p99, " +
			"resolution_rate, reopen_rate, one_touch_rate, csat_mean, csat_percent, sla_first_response_compliance, " +
			"qa_score_mean, qa_score_p50, qa_score_p90, qa_score_p99, qa_auto_fail_rate, " +
			"call_abandon_rate, call_service_level, call_asa_mean, call_asa_p50, call_asa_p90, call_asa_p99, " +
			"call_aht_mean, call_aht_p50, call_aht_p90, call_aht_p99)\n" +
			"$F:6: tenants.acme.quality_rules[1].window: unknown window \"2d\" (want one of 1h, 24h, 7d, 30d)\n" +
			"$F:6: tenants.acme.quality_rules[1].min_sample: want a positive whole number, not \"0\"\n" +
			"$F:7: tenants.acme.quality_rules[2]: set above: or below:, not both\n" +
			"$F:8: tenants.acme.quality_rules[3]: set above: or below: (the threshold)",
	},
	{
		name: "a queue has only call figures",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    quality_rules:
      - {name: a, kind: kpi, escalation: e, window: 7d, scope: queue, metric: csat_mean, below: 4}
      - {name: b, kind: kpi_baseline, escalation: e, window: 7d, scope: queue, metric: reopen_rate, drop: 20%}
      - {name: c, kind: kpi, escalation: e, window: 7d, scope: queue, metric: call_service_level, below: 80%}
`,
		want: "$F:5: tenants.acme.quality_rules[0].metric: csat_mean is a ticket metric, and a queue has only call figures (scope: queue takes a call_* metric)\n" +
			"$F:6: tenants.acme.quality_rules[1].metric: reopen_rate is a ticket metric, and a queue has only call figures (scope: queue takes a call_* metric)",
	},
	{
		name: "thresholds in each metric's unit",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    quality_rules:
      - {name: a, kind: kpi, escalation: e, window: 7d, metric: resolution_rate, below: 1.5}
      - {name: b, kind: kpi, escalation: e, window: 7d, metric: one_touch_rate, below: "0.5"}
      - {name: c, kind: kpi, escalation: e, window: 7d, metric: csat_percent, below: 120}
      - {name: d, kind: kpi, escalation: e, window: 7d, metric: csat_mean, below: 0.5}
      - {name: f, kind: kpi, escalation: e, window: 7d, metric: first_response_p50, above: soon}
      - {name: g, kind: kpi, escalation: e, window: 7d, metric: next_response_mean, above: -30}
      - {name: h, kind: kpi, escalation: e, window: 7d, metric: resolution_p99, above: 0s}
      - {name: i, kind: kpi, escalation: e, window: 7d, metric: sla_first_response_compliance, below: [0.9]}
      - {name: j, kind: kpi, escalation: e, window: 7d, metric: reopen_rate, above: 101%}
`,
		want: "$F:5: tenants.acme.quality_rules[0].below: want a rate from 0 to 1 such as 0.7 or 70%, not \"1.5\"\n" +
			"$F:6: tenants.acme.quality_rules[1].below: want a rate from 0 to 1 such as 0.7 or 70%, not \"0.5\"\n" +
			"$F:7: tenants.acme.quality_rules[2].below: want a percentage from 0 to 100, not \"120\"\n" +
			"$F:8: tenants.acme.quality_rules[3].below: want a mean rating from 1 to 5, not \"0.5\"\n" +
			"$F:9: tenants.acme.quality_rules[4].above: want a positive duration such as 2h or a number of seconds, not \"soon\"\n" +
			"$F:10: tenants.acme.quality_rules[5].above: want a positive duration such as 2h or a number of seconds, not \"-30\"\n" +
			"$F:11: tenants.acme.quality_rules[6].above: want a positive duration such as 2h or a number of seconds, not \"0s\"\n" +
			"$F:12: tenants.acme.quality_rules[7].below: want a rate from 0 to 1 such as 0.7 or 70%, not a list\n" +
			"$F:13: tenants.acme.quality_rules[8].above: want a rate from 0 to 1 such as 0.7 or 70%, not \"101%\"",
	},
	{
		name: "kpi_baseline drop",
		give: `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    quality_rules:
      - {name: a, kind: kpi_baseline, escalation: e, window: 7d, metric: csat_mean}
      - {name: b, kind: kpi_baseline, escalation: e, window: 7d, metric: csat_mean, drop: 1}
      - {name: c, kind: kpi_baseline, escalation: e, window: 7d, metric: csat_mean, drop: 0%}
      - {name: d, kind: kpi_baseline, escalation: e, window: 7d, metric: csat_mean, drop: lots}
`,
		want: "$F:5: tenants.acme.quality_rules[0]: missing drop: (how much worse than the baseline counts, e.g. 20%)\n" +
			"$F:6: tenants.acme.quality_rules[1].drop: want a share between 0 and 1 such as 0.2 or 20%, not \"1\"\n" +
			"$F:7: tenants.acme.quality_rules[2].drop: want a share between 0 and 1 such as 0.2 or 20%, not \"0%\"\n" +
			"$F:8: tenants.acme.quality_rules[3].drop: want a share between 0 and 1 such as 0.2 or 20%, not \"lots\"",
	},
	{
		name: "merge keys are not supported",
		give: `tenants:
  acme:
    escalation_policies:
      e: &e {levels: [{targets: lead}]}
      f:
        <<: *e
        repeat: 1h
`,
		want: "$F:6: tenants.acme.escalation_policies.f: unknown key \"<<\" (allowed: levels, repeat, history_horizon)\n" +
			"$F:6: tenants.acme.escalation_policies.f: missing levels: (whom to notify, in order)",
	},
	{
		name: "every problem at once, in line order",
		give: `tenants:
  acme:
    calendars:
      office:
        time_zone: Europe/Berlin
        hours: {mon-fri: "09:00-17:00", sat: "9:00-12:00"}
    escalation_policies:
      default:
        levels:
          - targets: [lead]
    sla_policies:
      - name: vip
        calendar: ofice
        escalation: default
        targets:
          urgent: {first_response: 30m, resolution: 8 hours}
    quality_rules:
      - name: csat
        kind: kpi_baseline
        metric: csat_percent
        window: 7d
        drop: 20%
        below: 60
        escalation: default
  Beta:
    quality_rules:
      - {name: x, kind: reopens, min_reopens: 1, escalation: default}
`,
		want: "$F:6: tenants.acme.calendars.office.hours.sat: \"9:00-12:00\" is not a time range (write e.g. 09:00-17:00)\n" +
			"$F:13: tenants.acme.sla_policies[0].calendar: unknown calendar \"ofice\" (want one of office)\n" +
			"$F:16: tenants.acme.sla_policies[0].targets.urgent.resolution: \"8 hours\" is not a duration (write e.g. 90s, 15m, 4h or 3d)\n" +
			"$F:23: tenants.acme.quality_rules[0]: below does not apply to kind kpi_baseline\n" +
			"$F:25: tenants: tenant id \"Beta\" must match [a-z0-9][a-z0-9_-]{0,62}\n" +
			"$F:27: tenants.Beta.quality_rules[0].escalation: unknown escalation policy \"default\" (the tenant defines none)",
	},
}

func TestParseRejects(t *testing.T) {
	if len(rejectTests) < 30 {
		t.Errorf("only %d bad files", len(rejectTests))
	}
	for _, tt := range rejectTests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("rules.yaml", []byte(tt.give))
			want := strings.ReplaceAll(tt.want, "$F", "rules.yaml")
			if cfg != nil || err == nil || err.Error() != want {
				t.Fatalf("Parse = %v, error:\n%v\nwant error:\n%s", cfg, err, want)
			}
			var probs Problems
			if !errors.As(err, &probs) || len(probs) != strings.Count(want, "\n")+1 {
				t.Fatalf("error %T is not Problems, or holds %d problems", err, len(probs))
			}
		})
	}
}
