package httpapi

import "testing"

func TestCheckContentType(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "plain", give: "application/json", want: ""},
		{name: "utf-8 charset", give: "application/json; charset=utf-8", want: ""},
		{name: "charset case and spacing", give: "Application/JSON;charset=\"UTF-8\"", want: ""},
		{name: "missing", give: "", want: "Content-Type must be application/json"},
		{name: "form", give: "application/x-www-form-urlencoded", want: "Content-Type must be application/json"},
		{name: "json suffix types are not canonical JSON", give: "application/vnd.api+json", want: "Content-Type must be application/json"},
		{name: "malformed", give: "application/json; charset", want: "Content-Type must be application/json"},
		{name: "other charset", give: "application/json; charset=utf-16", want: "charset must be utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkContentType(tt.give); got != tt.want {
				t.Errorf("checkContentType(%q) = %q; want %q", tt.give, got, tt.want)
			}
		})
	}
}
