package app

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	good := Config{KPIAddr: "k:1", EscalationAddr: "e:1", NotifyAddr: "n:1", SessionMaxAge: time.Hour, CallTimeout: time.Second, SimulateTimeout: time.Minute, MaxStreams: 4}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"good", func(*Config) {}, ""},
		{"no kpi", func(c *Config) { c.KPIAddr = "" }, "kpi-addr"},
		{"short session", func(c *Config) { c.SessionMaxAge = time.Second }, "session-max-age"},
		{"no simulate timeout", func(c *Config) { c.SimulateTimeout = 0 }, "-simulate-timeout"},
		{"simulate timeout past the write timeout", func(c *Config) { c.SimulateTimeout = 90 * time.Second }, "-simulate-timeout"},
		{"streams", func(c *Config) { c.MaxStreams = 0 }, "max-streams-per-session"},
		{"public url", func(c *Config) { c.PublicURL = "console.example.com" }, "-public-url"},
		{"issuer without client", func(c *Config) { c.OIDCIssuer = "https://login.example.com" }, "-oidc-client-id"},
		{"cert without key", func(c *Config) { c.UpstreamTLSCert = "c.pem" }, "-upstream-tls-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestSecureCookies(t *testing.T) {
	tests := []struct {
		give string
		tls  bool
		want bool
	}{
		{"http://127.0.0.1:8088", false, false},
		{"http://localhost:8088", false, false},
		{"http://[::1]:8088", false, false},
		{"http://127.0.0.1:8088", true, true},
		{"http://10.0.0.5:8088", false, true},
		{"https://console.example.com", false, true},
	}
	for _, tt := range tests {
		if got := secureCookies(tt.give, tt.tls); got != tt.want {
			t.Errorf("secureCookies(%q, tls %v) = %v, want %v", tt.give, tt.tls, got, tt.want)
		}
	}
}
