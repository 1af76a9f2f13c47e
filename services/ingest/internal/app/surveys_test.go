package app

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// surveySources are globex's survey webhooks in the tenants file of the survey tests.
const surveySources = `    sources:
      typeform:
        secrets: [{env: GLOBEX_TYPEFORM_SECRET}]
        ticket_field: ticket_id
        score_question: csat
        scale: 1-5
      surveymonkey:
        api_key: sm-client
        secrets: [{env: GLOBEX_SURVEYMONKEY_SECRET}]
        ticket_field: ticket_id
        score_question: "667461690"
        scale: nps
      qualtrics:
        url_token: {env: GLOBEX_QUALTRICS_TOKEN}
        ticket_field: ticket_id
        score_question: QID3
        scale: 1-10
`

var surveyEnv = map[string]string{
	"GLOBEX_TYPEFORM_SECRET":     "tf-secret",
	"GLOBEX_SURVEYMONKEY_SECRET": "sm-secret",
	"GLOBEX_QUALTRICS_TOKEN":     "qx-token",
}

// startSurveys runs ingest with globex's survey sources.
func startSurveys(t *testing.T, natsURL string) *running {
	t.Helper()
	return start(t, natsURL, func(c *Config, d *Deps) {
		file, err := os.ReadFile(c.TenantsFile)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(file), globexSources) {
			t.Fatal("the tenants file has no place for globex's sources")
		}
		if err := os.WriteFile(c.TenantsFile, []byte(strings.Replace(string(file), globexSources, surveySources, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		getenv := d.Getenv
		d.Getenv = func(name string) string {
			if v, ok := surveyEnv[name]; ok {
				return v
			}
			return getenv(name)
		}
	})
}

// typeformBody is a form_response rating ticket T-9 with score, submitted at.
func typeformBody(token string, score int, at time.Time) string {
	return fmt.Sprintf(`{"event_id":"e-%s","event_type":"form_response","form_response":{"form_id":"f1","token":%q,`+
		`"submitted_at":%q,"hidden":{"ticket_id":"T-9"},"answers":[{"type":"number","number":%d,"field":{"id":"x","ref":"csat","type":"rating"}}]}}`,
		token, token, at.UTC().Format(time.RFC3339), score)
}

// The signatures below are computed here, independently of package verify.
func typeformSigned(body string) map[string]string {
	m := hmac.New(sha256.New, []byte("tf-secret"))
	m.Write([]byte(body))
	return map[string]string{"Typeform-Signature": "sha256=" + base64.StdEncoding.EncodeToString(m.Sum(nil))}
}

func surveyMonkeySigned(body string) map[string]string {
	m := hmac.New(sha1.New, []byte("sm-client&sm-secret"))
	m.Write([]byte(body))
	return map[string]string{"Sm-Signature": base64.StdEncoding.EncodeToString(m.Sum(nil)), "Sm-Apikey": "sm-client"}
}

// TestSurveyWebhooks posts each survey source's deliveries through the whole service: a rating
// is stored once however often it is delivered, what carries no score is answered 200 with the
// skip, and bad input is refused with its reason and stores nothing.
func TestSurveyWebhooks(t *testing.T) {
	_, natsURL := testenv.NATS(t)
	r := startSurveys(t, natsURL)
	s := tickets(t, natsURL)
	now := time.Now().Add(-time.Minute)
	rating := typeformBody("resp-1", 4, now)
	qualtricsForm := url.Values{"Topic": {"surveyengine.completedResponse.SV_1"},
		"MSG": {fmt.Sprintf(`{"Status":"Complete","SurveyID":"SV_1","ResponseID":"R_1","CompletedDate":%q,"ticket_id":"T-9","QID3":"9"}`,
			now.UTC().Format("2006-01-02 15:04:05"))}}.Encode()
	notification := `{"event_type":"response_completed","object_type":"response","object_id":"114","resources":{"survey_id":"405"}}`
	outOfScale := typeformBody("resp-2", 9, now)
	const formType = "application/x-www-form-urlencoded"

	tests := []struct {
		name, path, ctype, body string
		header                  map[string]string
		status                  int
		// contains are parts of the answer; stored is how many messages the stream gains.
		contains []string
		stored   uint64
	}{
		{name: "typeform rating", path: "typeform", ctype: jsonType, body: rating, header: typeformSigned(rating),
			status: 202, contains: []string{`"accepted":["`, `"duplicates":0`}, stored: 1},
		{name: "typeform rating again", path: "typeform", ctype: jsonType, body: rating, header: typeformSigned(rating),
			status: 202, contains: []string{`"duplicates":1`}},
		{name: "typeform tampered", path: "typeform", ctype: jsonType, body: strings.Replace(rating, `"number":4`, `"number":5`, 1), header: typeformSigned(rating),
			status: 401, contains: []string{`"code":"bad_signature"`, `Typeform-Signature does not match the body`}},
		{name: "typeform score off the scale", path: "typeform", ctype: jsonType, body: outOfScale, header: typeformSigned(outOfScale),
			status: 400, contains: []string{`"field":"form_response.answers[0].number"`, `9 is outside the scale 1-5 set for this tenant`}},
		{name: "qualtrics with its token", path: "qualtrics?token=qx-token", ctype: formType, body: qualtricsForm,
			status: 202, contains: []string{`"accepted":["`}, stored: 1},
		{name: "qualtrics without token", path: "qualtrics", ctype: formType, body: qualtricsForm,
			status: 401, contains: []string{`"code":"missing_credentials"`}},
		{name: "qualtrics as JSON", path: "qualtrics?token=qx-token", ctype: jsonType, body: qualtricsForm,
			status: 415, contains: []string{`Content-Type must be application/x-www-form-urlencoded`}},
		{name: "surveymonkey webhook needs a fetch", path: "surveymonkey", ctype: jsonType, body: notification, header: surveyMonkeySigned(notification),
			status: 200, contains: []string{`"accepted":[]`, `"reason":"fetch_required"`}},
		{name: "surveymonkey with another app's signature", path: "surveymonkey", ctype: jsonType, body: notification,
			header: map[string]string{"Sm-Signature": surveyMonkeySigned(notification)["Sm-Signature"], "Sm-Apikey": "other"},
			status: 401, contains: []string{`"code":"bad_signature"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := msgCount(t, s)
			got := do(t, http.MethodPost, r.base+"/v1/tenants/globex/webhooks/"+tt.path, tt.ctype, tt.body, tt.header)
			if got.status != tt.status {
				t.Fatalf("status %d (%s), want %d", got.status, got.body, tt.status)
			}
			for _, c := range tt.contains {
				if !strings.Contains(got.body, c) {
					t.Errorf("answer %s lacks %s", got.body, c)
				}
			}
			if n := msgCount(t, s) - before; n != tt.stored {
				t.Errorf("stream gained %d messages, want %d", n, tt.stored)
			}
		})
	}
}
