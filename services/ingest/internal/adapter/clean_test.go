package adapter

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

func TestComment(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"trimmed", "  Great!  ", "Great!"},
		{"control characters dropped, line breaks and tabs kept", "ok\x07 fine\n\tthanks\r", "ok fine\n\tthanks"},
		{"replacement character dropped", "bad \ufffdbyte", "bad byte"},
		{"cut on a character boundary", strings.Repeat("é", 3000), strings.Repeat("é", canonical.MaxCommentBytes/2)},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Comment(tt.give); got != tt.want {
				t.Errorf("Comment(%.40q) = %.40q, want %.40q", tt.give, got, tt.want)
			}
		})
	}
}

func TestTags(t *testing.T) {
	many := make([]string, canonical.MaxTags+5)
	for i := range many {
		many[i] = "t"
	}
	tests := []struct {
		name string
		give []string
		want []string
	}{
		{"kept and trimmed", []string{"vip", " billing "}, []string{"vip", "billing"}},
		{"empty, too long and control characters dropped", []string{"", "  ", strings.Repeat("x", canonical.MaxTagBytes+1), "a\x00b", "ok"}, []string{"ok"}},
		{"at most MaxTags", many, many[:canonical.MaxTags]},
		{"none left is nil", []string{""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tags(tt.give); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Tags(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestChannel(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"lower case", " Email ", "email"},
		{"too long", strings.Repeat("x", canonical.MaxChannelBytes+1), ""},
		{"control character", "we\x01b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Channel(tt.give); got != tt.want {
				t.Errorf("Channel(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		give string
		n    int
		want string
	}{
		{"short kept", "abc", 3, "abc"},
		{"cut and marked", "abcdef", 3, "abc…"},
		{"cut before a split character", "aé", 2, "a…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Truncate(tt.give, tt.n); got != tt.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tt.give, tt.n, got, tt.want)
			}
		})
	}
}

func TestValidText(t *testing.T) {
	tests := []struct {
		name string
		give string
		max  int
		want bool
	}{
		{"empty", "", 3, true},
		{"fits", "abc", 3, true},
		{"too long", "abcd", 3, false},
		{"control character", "a\tb", 3, false},
		{"not UTF-8", "a\xffb", 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidText(tt.give, tt.max); got != tt.want {
				t.Errorf("ValidText(%q, %d) = %v, want %v", tt.give, tt.max, got, tt.want)
			}
		})
	}
}

func TestRawID(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    string
		wantErr bool
	}{
		{"string trimmed", `" 42 "`, "42", false},
		{"number", `42`, "42", false},
		{"null is absent", `null`, "", false},
		{"fraction", `4.2`, "", true},
		{"object", `{}`, "", true},
		{"control character", `"4\u00002"`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RawID(json.RawMessage(tt.give), "id")
			var ps canonical.Problems
			if got != tt.want || (err != nil) != tt.wantErr || (err != nil && !errors.As(err, &ps)) {
				t.Errorf("RawID(%s) = %q, %v; want %q, error %v", tt.give, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRequiredID(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		present    bool
		want       string
		wantReason string
	}{
		{name: "present", give: "ana@example.com", present: true, want: "ana@example.com"},
		{name: "odd characters kept", give: "a.b*c >{x} Ünï", present: true, want: "a.b*c >{x} Ünï"},
		{name: "absent", give: "", present: false, wantReason: "required"},
		{name: "placeholder the source calls absent", give: "#{ticket.owner.login}", present: false, wantReason: "required"},
		{name: "longest allowed", give: strings.Repeat("x", canonical.MaxIDBytes), present: true, want: strings.Repeat("x", canonical.MaxIDBytes)},
		{name: "too long", give: strings.Repeat("x", canonical.MaxIDBytes+1), present: true, wantReason: "longer than 256 bytes"},
		{name: "control character", give: "4\x002", present: true, wantReason: "contains a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			give := tt.give
			got, err := RequiredID("ticket.id", give, tt.present)
			if tt.wantReason == "" {
				if err != nil || got != tt.want {
					t.Fatalf("RequiredID(%q) = %q, %v; want %q", give, got, err, tt.want)
				}
				return
			}
			var ps canonical.Problems
			if !errors.As(err, &ps) || len(ps.List) != 1 || ps.List[0].Field != "ticket.id" || ps.List[0].Reason != tt.wantReason {
				t.Fatalf("RequiredID(%q) = %q, %v; want the problem ticket.id: %s", give, got, err, tt.wantReason)
			}
		})
	}
}

func TestID(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		want        ID
		wantTrimmed TrimmedID
		wantErr     bool
	}{
		{"number", `{"id": 42}`, "42", "42", false},
		{"string", `{"id": " a7 "}`, " a7 ", "a7", false},
		{"null", `{"id": null}`, "", "", false},
		{"object is a type error", `{"id": {}}`, "", "", true},
		{"bool is a type error", `{"id": true}`, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct {
				ID ID `json:"id"`
			}
			var w struct {
				ID TrimmedID `json:"id"`
			}
			err := DecodeJSON([]byte(tt.give), &v)
			errT := DecodeJSON([]byte(tt.give), &w)
			if v.ID != tt.want || w.ID != tt.wantTrimmed || (err != nil) != tt.wantErr || (errT != nil) != tt.wantErr {
				t.Errorf("got %q (%v), trimmed %q (%v); want %q, %q, error %v", v.ID, err, w.ID, errT, tt.want, tt.wantTrimmed, tt.wantErr)
			}
		})
	}
}

func TestJSONKind(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{`{}`, "object"}, {`[]`, "array"}, {`""`, "string"}, {`true`, "bool"}, {`false`, "bool"}, {`null`, "null"}, {`-1`, "number"}, {``, "value"},
	}
	for _, tt := range tests {
		t.Run(tt.want+" "+tt.give, func(t *testing.T) {
			if got := JSONKind([]byte(tt.give)); got != tt.want {
				t.Errorf("JSONKind(%s) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestResults(t *testing.T) {
	ev := canonical.Event{ID: "e1"}
	if got := One(ev); !reflect.DeepEqual(got, Result{Events: []canonical.Event{ev}}) {
		t.Errorf("One = %+v", got)
	}
	want := Result{Skipped: []Skip{{Reason: "spam", Detail: "ticket 7 marked as spam"}}}
	if got := Skipped("spam", "ticket %s marked as spam", "7"); !reflect.DeepEqual(got, want) {
		t.Errorf("Skipped = %+v, want %+v", got, want)
	}
}
