package tenants

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot/hsapi"
)

// A HubSpot source may name the private app token its conversation messages are looked up
// with, and (for a local stand-in or a proxy) the API's base URL.
func TestHubSpotAPIAccess(t *testing.T) {
	const base = "tenants:\n  acme:\n    sources:\n      hubspot:\n        secrets: [{env: CW}]\n        target_url: https://x.example.com/h\n"
	tests := []struct {
		name    string
		give    string
		wantURL string // "" with wantErr
		wantTok bool
		wantErr string
	}{
		{"no token: no lookups", "", hsapi.DefaultBaseURL, false, ""},
		{"token, HubSpot's API", "        access_token: {env: TOKEN}\n", hsapi.DefaultBaseURL, true, ""},
		{"token and a local stand-in", "        access_token: {env: TOKEN}\n        api_url: http://127.0.0.1:38211/\n", "http://127.0.0.1:38211", true, ""},
		{"token and an https proxy", "        access_token: {env: TOKEN}\n        api_url: https://hubspot-proxy.example.com\n", "https://hubspot-proxy.example.com", true, ""},
		{"plain http elsewhere", "        access_token: {env: TOKEN}\n        api_url: http://api.hubapi.com\n", "", false, "http is only allowed to a loopback address"},
		{"a path", "        access_token: {env: TOKEN}\n        api_url: https://api.hubapi.com/conversations\n", "", false, "want scheme://host[:port] only"},
		{"api_url alone", "        api_url: https://api.hubapi.com\n", "", false, "api_url: applies only with access_token:"},
		{"token written inline", "        access_token: pat-na1-sekrit\n", "", false, "access_token"},
		{"token variable unset", "        access_token: {env: NOT_SET}\n", "", false, "NOT_SET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(writeTenants(t, base+tt.give, nil), getenv(testEnv))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), leakMarker) {
					t.Errorf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			hs, _ := Source(cfg, "acme", "hubspot")
			if hs.HubSpotAPI.BaseURL != tt.wantURL || hs.HubSpotAPI.Configured() != tt.wantTok {
				t.Errorf("access %+v, want %s with token %v", hs.HubSpotAPI, tt.wantURL, tt.wantTok)
			}
			if shown := fmt.Sprintf("%v %+v", hs.LogValue(), hs); strings.Contains(shown, testEnv["TOKEN"]) {
				t.Errorf("the source shows the token: %s", shown)
			}
		})
	}
	// The other sources have no such keys.
	_, err := Load(writeTenants(t, "tenants:\n  acme:\n    sources:\n      zendesk:\n        secrets: [{env: ZD}]\n        access_token: {env: TOKEN}\n", nil), getenv(testEnv))
	if err == nil || !strings.Contains(err.Error(), `unknown key "access_token"`) {
		t.Errorf("zendesk with access_token: %v", err)
	}
}
