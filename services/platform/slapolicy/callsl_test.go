package slapolicy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

func TestCallServiceLevel(t *testing.T) {
	tests := []struct {
		name string
		give string
		want time.Duration
		prob string // a problem the file must be refused with; "" for none
	}{
		{name: "set", give: "call_service_level: 30s", want: 30 * time.Second},
		{name: "not set: none (kpi's default applies)", give: "calendars: {}", want: 0},
		{name: "below a second", give: "call_service_level: 500ms", prob: "tenants.acme.call_service_level"},
		{name: "over an hour", give: "call_service_level: 2h", prob: "2h0m0s is longer than 1h0m0s"},
		{name: "not a duration", give: "call_service_level: twenty", prob: `"twenty" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Parse("rules.yaml", []byte("tenants:\n  acme:\n    "+tt.give+"\n"))
			if tt.prob != "" {
				var probs yamlconf.Problems
				if !errors.As(err, &probs) || !strings.Contains(err.Error(), tt.prob) {
					t.Fatalf("err = %v; want problems naming %q", err, tt.prob)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := set.CallServiceLevel["acme"]; got != tt.want {
				t.Errorf("call_service_level = %v, want %v", got, tt.want)
			}
		})
	}
}
