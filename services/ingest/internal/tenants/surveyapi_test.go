package tenants

import (
	"fmt"
	"strings"
	"testing"
)

// A SurveyMonkey or Qualtrics source may name the API token its webhooks' responses are looked
// up with; Qualtrics also needs the brand's datacenter, having no API URL of its own.
func TestSurveyAPIAccess(t *testing.T) {
	const (
		sm = "tenants:\n  acme:\n    sources:\n      surveymonkey:\n        api_key: k\n        secrets: [{env: ZD}]\n        ticket_field: t\n        score_question: \"1\"\n        scale: nps\n"
		qx = "tenants:\n  acme:\n    sources:\n      qualtrics:\n        url_token: {env: CW}\n        ticket_field: t\n        score_question: QID3\n        scale: 1-5\n"
	)
	tests := []struct {
		name    string
		give    string
		source  string
		wantURL string
		wantTok bool
		wantErr string
	}{
		{"surveymonkey without a token: no lookups", sm, "surveymonkey", SurveyMonkeyAPI, false, ""},
		{"surveymonkey token, SurveyMonkey's API", sm + "        access_token: {env: TOKEN}\n", "surveymonkey", SurveyMonkeyAPI, true, ""},
		{"surveymonkey token, EU data centre", sm + "        access_token: {env: TOKEN}\n        api_url: https://api.eu.surveymonkey.com/\n", "surveymonkey", "https://api.eu.surveymonkey.com", true, ""},
		{"surveymonkey local stand-in", sm + "        access_token: {env: TOKEN}\n        api_url: http://127.0.0.1:38211\n", "surveymonkey", "http://127.0.0.1:38211", true, ""},
		{"surveymonkey token inline", sm + "        access_token: sm-sekrit\n", "", "", false, "tenants.acme.sources.surveymonkey.access_token"},
		{"surveymonkey api_url alone", sm + "        api_url: https://api.surveymonkey.com\n", "", "", false, "surveymonkey.api_url: applies only with access_token:"},
		{"surveymonkey plain http", sm + "        access_token: {env: TOKEN}\n        api_url: http://api.surveymonkey.com\n", "", "", false, "http is only allowed to a loopback address"},
		{"qualtrics without a token: no lookups", qx, "qualtrics", "", false, ""},
		{"qualtrics token and datacenter", qx + "        access_token: {env: TOKEN}\n        api_url: https://yul1.qualtrics.com\n", "qualtrics", "https://yul1.qualtrics.com", true, ""},
		{"qualtrics token without datacenter", qx + "        access_token: {env: TOKEN}\n", "", "", false, "qualtrics: access_token: needs api_url: (the brand's datacenter, as https://yul1.qualtrics.com)"},
		{"qualtrics datacenter with a path", qx + "        access_token: {env: TOKEN}\n        api_url: https://yul1.qualtrics.com/API/v3\n", "", "", false, "want scheme://host[:port] only, as https://yul1.qualtrics.com"},
		{"qualtrics token inline", qx + "        access_token: abc123\n        api_url: https://yul1.qualtrics.com\n", "", "", false, "tenants.acme.sources.qualtrics.access_token"},
		{"qualtrics token variable unset", qx + "        access_token: {env: NOT_SET}\n        api_url: https://yul1.qualtrics.com\n", "", "", false, "NOT_SET"},
		{"qualtrics api_url alone", qx + "        api_url: https://yul1.qualtrics.com\n", "", "", false, "qualtrics.api_url: applies only with access_token:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(writeTenants(t, tt.give, nil), getenv(testEnv))
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
			sc, _ := Source(cfg, "acme", tt.source)
			if sc.SurveyAPI.BaseURL != tt.wantURL || sc.SurveyAPI.Configured() != tt.wantTok || sc.HubSpotAPI.Configured() {
				t.Errorf("access %+v, want %s with token %v", sc.SurveyAPI, tt.wantURL, tt.wantTok)
			}
			if shown := fmt.Sprintf("%v %+v", sc.LogValue(), sc); strings.Contains(shown, testEnv["TOKEN"]) {
				t.Errorf("the source shows the token: %s", shown)
			}
		})
	}
}
