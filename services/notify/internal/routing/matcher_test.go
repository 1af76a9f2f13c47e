package routing

import (
	"testing"
)

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		give string
		want string // String() of the matcher, or the error
	}{
		{`tenant="acme"`, `tenant="acme"`},
		{`  team =~ "billing|finance"  `, `team=~"billing|finance"`},
		{`severity!="info"`, `severity!="info"`},
		{`subject_kind!~"ticket|team"`, `subject_kind!~"ticket|team"`},
		{`team=""`, `team=""`},
		{`summary="say \"hi\"\t\\o/"`, `summary="say \"hi\"\t\\o/"`},
		{`_x9="ü"`, `_x9="ü"`},
		{`rule=~"sla-.*"`, `rule=~"sla-.*"`},
		// Invalid.
		{``, `matcher "": want label="value" (or !=, =~, !~)`},
		{`tenant`, `matcher "tenant": want label="value" (or !=, =~, !~)`},
		{`tenant "acme"`, `matcher "tenant \"acme\"": missing the operator (want =, !=, =~ or !~)`},
		{`tenant=="acme"`, `matcher "tenant==\"acme\"": unknown operator "==" (want =, !=, =~ or !~)`},
		{`tenant<>"acme"`, `matcher "tenant<>\"acme\"": unknown operator "<>" (want =, !=, =~ or !~)`},
		{`tenant~"acme"`, `matcher "tenant~\"acme\"": unknown operator "~" (want =, !=, =~ or !~)`},
		{`tenant=acme`, `matcher "tenant=acme": the value must be in double quotes (label="value")`},
		{`tenant='acme'`, `matcher "tenant='acme'": the value must be in double quotes (label="value")`},
		{`tenant=`, `matcher "tenant=": the value must be in double quotes (label="value")`},
		{`tenant="acme`, `matcher "tenant=\"acme": the value must be one double-quoted string, with \" and \\ escaped`},
		{`tenant="a" "b"`, `matcher "tenant=\"a\" \"b\"": the value must be one double-quoted string, with \" and \\ escaped`},
		{`team=~"(billing"`, "matcher \"team=~\\\"(billing\\\"\": bad regular expression: missing closing ): `(billing`"},
		{`team!~"x{2000}"`, "matcher \"team!~\\\"x{2000}\\\"\": bad regular expression: invalid repeat count: `{2000}`"},
		{`="acme"`, `matcher "=\"acme\"": missing the label name (want label="value")`},
		{` =~"acme"`, `matcher " =~\"acme\"": missing the label name (want label="value")`},
		{`"tenant"="acme"`, `matcher "\"tenant\"=\"acme\"": missing the label name (want label="value")`},
		{`9tenant="acme"`, `matcher "9tenant=\"acme\"": label name "9tenant" must match [A-Za-z_][A-Za-z0-9_]*`},
		{`team-lead="x"`, `matcher "team-lead=\"x\"": label name "team-lead" must match [A-Za-z_][A-Za-z0-9_]*`},
	}
	for _, tt := range tests {
		m, err := ParseMatcher(tt.give)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = m.String()
			// What String writes parses back to the same matcher.
			if again, err := ParseMatcher(got); err != nil || again.String() != got {
				t.Errorf("ParseMatcher(%q) does not round-trip: %v, %v", got, again, err)
			}
		}
		if got != tt.want {
			t.Errorf("ParseMatcher(%q) = %s\nwant %s", tt.give, got, tt.want)
		}
	}
}

func TestMatcherMatches(t *testing.T) {
	labels := map[string]string{"tenant": "acme", "team": "billing", "severity": "warning", "empty": ""}
	tests := []struct {
		matcher string
		want    bool
	}{
		{`tenant="acme"`, true},
		{`tenant="Acme"`, false},
		{`tenant!="acme"`, false},
		{`tenant!="globex"`, true},
		{`team=~"billing|finance"`, true},
		{`team=~"bill"`, false}, // anchored: the whole value must match
		{`team=~"bill.*"`, true},
		{`team=~"ing"`, false},
		{`team!~"billing|finance"`, false},
		{`team!~"support"`, true},
		{`team=~"billing|x"`, true}, // the alternation is grouped inside the anchors
		{`team=~"x|billing"`, true},
		// A missing label is "".
		{`agent=""`, true},
		{`agent!=""`, false},
		{`agent!="a1"`, true},
		{`agent="a1"`, false},
		{`agent=~".*"`, true},
		{`agent=~".+"`, false},
		{`agent!~"a.*"`, true},
		{`empty=""`, true},
	}
	for _, tt := range tests {
		m, err := ParseMatcher(tt.matcher)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Matches(labels); got != tt.want {
			t.Errorf("%s matches %v = %v, want %v", tt.matcher, labels, got, tt.want)
		}
		// A matcher built by hand behaves like a parsed one.
		hand := Matcher{Label: m.Label, Op: m.Op, Value: m.Value}
		if got := hand.Matches(labels); got != tt.want {
			t.Errorf("hand-built %s matches = %v, want %v", tt.matcher, got, tt.want)
		}
	}
	if (Matcher{Label: "a", Op: "<>", Value: "x"}).Matches(labels) {
		t.Error("an unknown operator matched")
	}
}

func TestMatchersMatch(t *testing.T) {
	var ms Matchers
	for _, s := range []string{`tenant="acme"`, `severity!="info"`} {
		m, err := ParseMatcher(s)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if !ms.Matches(map[string]string{"tenant": "acme", "severity": "critical"}) ||
		ms.Matches(map[string]string{"tenant": "acme", "severity": "info"}) ||
		ms.Matches(map[string]string{"severity": "critical"}) {
		t.Error("all matchers must match")
	}
	if !(Matchers{}).Matches(nil) || (Matchers)(nil).String() != "{}" {
		t.Error("no matchers match everything")
	}
	if got := ms.String(); got != `{tenant="acme", severity!="info"}` {
		t.Errorf("String() = %s", got)
	}
}
