package idtoken

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	tests := []struct{ give, want string }{
		{"ana", "ana"},
		{"42", "42"},
		{"", "~"},
		{"ana@example.com", "ana@example~2Ecom"},
		{"a.b*c>d e", "a~2Eb~2Ac~3Ed~20e"},
		{"{slot}", "~7Bslot~7D"},
		{"x:y", "x~3Ay"},
		{"~", "~7E"},
		{"José", "Jos~C3~A9"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got := Escape(tt.give)
			if got != tt.want {
				t.Fatalf("Escape(%q) = %q, want %q", tt.give, got, tt.want)
			}
			back, err := Unescape(got)
			if err != nil || back != tt.give {
				t.Fatalf("Unescape(%q) = %q, %v; want %q", got, back, err, tt.give)
			}
		})
	}
}

func TestUnescapeRejects(t *testing.T) {
	for _, give := range []string{"a.b", "~2", "~ZZ", "~61", "a b", "~7e"} {
		if _, err := Unescape(give); err == nil {
			t.Errorf("Unescape(%q) accepted a token Escape cannot produce", give)
		}
	}
}

func TestValidTenant(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"acme", true}, {"a", true}, {"0-x_y", true}, {strings.Repeat("a", 63), true},
		{"", false}, {"-acme", false}, {"Acme", false}, {"ac.me", false}, {"ac*", false},
		{strings.Repeat("a", 64), false}, {"ac me", false},
	}
	for _, tt := range tests {
		if got := ValidTenant(tt.give); got != tt.want {
			t.Errorf("ValidTenant(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func FuzzEscapeRoundTrip(f *testing.F) {
	for _, s := range []string{"ana", "", "a.b", "José", "~7E", "{x}", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		tok := Escape(id)
		if strings.ContainsAny(tok, ".*> \t\r\n{}:") {
			t.Fatalf("Escape(%q) = %q contains a forbidden character", id, tok)
		}
		back, err := Unescape(tok)
		if err != nil || back != id {
			t.Fatalf("round trip of %q: %q, %v", id, back, err)
		}
	})
}
