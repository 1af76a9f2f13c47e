package vendorapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCheckBaseURL(t *testing.T) {
	tests := []struct {
		give    string
		wantErr string
	}{
		{"https://yul1.qualtrics.com", ""},
		{"https://api.surveymonkey.com/", ""},
		{"http://127.0.0.1:8080", ""},
		{"http://[::1]:8080", ""},
		{"http://localhost:8080", ""},
		{"http://yul1.qualtrics.com", "http is only allowed to a loopback address"},
		{"ftp://yul1.qualtrics.com", `scheme "ftp": want https`},
		{"https://yul1.qualtrics.com/API/v3", "want scheme://host[:port] only, as https://example.com"},
		{"https://user:pw@yul1.qualtrics.com", "want scheme://host[:port] only"},
		{"https://yul1.qualtrics.com?x=1", "want scheme://host[:port] only"},
		{"yul1.qualtrics.com", "want scheme://host[:port] only"},
		{"https://%zz", "not a URL"},
	}
	for _, tt := range tests {
		err := CheckBaseURL(tt.give, "https://example.com")
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("CheckBaseURL(%q) = %v, want %q", tt.give, err, tt.wantErr)
		}
	}
}

// A token never shows, however it is printed, and two tokens compare without showing either.
func TestTokenNeverShows(t *testing.T) {
	const secret = "sekrit-token-value"
	a := Access{Token: NewToken(secret), BaseURL: "https://yul1.qualtrics.com"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "access", a, "token", a.Token)
	shown := fmt.Sprintf("%v %+v %#v %s %q", a, a, a, a.Token, a.Token) + logged.String()
	if strings.Contains(shown, secret) {
		t.Errorf("the token shows: %s", shown)
	}
	if !a.Same(Access{Token: NewToken(secret), BaseURL: a.BaseURL}) || a.Same(Access{Token: NewToken("other"), BaseURL: a.BaseURL}) ||
		a.Same(Access{Token: a.Token, BaseURL: "https://fra1.qualtrics.com"}) || !(Access{}).Same(Access{}) || a.Same(Access{BaseURL: a.BaseURL}) {
		t.Error("Same does not tell accounts apart")
	}
}

// The vendor's Authorize puts the token where the vendor reads it, and nowhere else.
func TestAuthorizeHeader(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = w.Write([]byte(`{"ok": true}`))
	}))
	defer srv.Close()
	for name, tt := range map[string]struct {
		v          Vendor
		header     string
		want       string
		wantNoAuth bool
	}{
		"bearer by default": {Vendor{Name: "SurveyMonkey"}, "Authorization", "Bearer tok", false},
		"a header of its own": {Vendor{Name: "Qualtrics", Authorize: func(h http.Header, tok string) { h.Set("X-API-TOKEN", tok) }},
			"X-API-TOKEN", "tok", true},
	} {
		var v struct{ OK bool }
		if err := New(tt.v, Options{}).Get(context.Background(), Access{Token: NewToken("tok"), BaseURL: srv.URL}, "acme", "/x", nil, &v); err != nil || !v.OK {
			t.Fatalf("%s: %v %+v", name, err, v)
		}
		if got.Get(tt.header) != tt.want || tt.wantNoAuth && got.Get("Authorization") != "" {
			t.Errorf("%s: headers %v", name, got)
		}
	}
}

// Without a base URL of its own or the vendor's, a lookup is an error before any request; the
// same without a token.
func TestNoBaseURLNoToken(t *testing.T) {
	c := New(Vendor{Name: "Qualtrics"}, Options{})
	if err := c.Get(context.Background(), Access{Token: NewToken("tok")}, "acme", "/x", nil, &struct{}{}); err == nil || !strings.Contains(err.Error(), "no Qualtrics API URL") {
		t.Errorf("no base URL: %v", err)
	}
	if err := c.Get(context.Background(), Access{BaseURL: "https://yul1.qualtrics.com"}, "acme", "/x", nil, &struct{}{}); err == nil || !strings.Contains(err.Error(), "no Qualtrics access token") {
		t.Errorf("no token: %v", err)
	}
}

// TestStatusOutcomes: each answer's outcome, as the adapters turn them into the webhook's.
func TestStatusOutcomes(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		body       string
		wantWait   time.Duration
		wantNF     bool
		wantInv    string
	}{
		{200, "", `{"a": 1}`, 0, false, ""},
		{429, "7", "", 7 * time.Second, false, ""},
		{429, "soon", "", DefaultRetryAfter, false, ""},
		{500, "", "", DefaultRetryAfter, false, ""},
		{503, "600", "", MaxRetryAfter, false, ""},
		{401, "", "", DefaultRetryAfter, false, ""},
		{403, "", "", DefaultRetryAfter, false, ""},
		{404, "", "", 0, true, ""},
		{400, "", "", 0, false, "/x answered 400"},
		{302, "", "", 0, false, "/x answered 302"},
		{200, "", `{"a": "1"}`, 0, false, "A must be a JSON int"},
		{200, "", `{"a": `, 0, false, "malformed JSON"},
		{200, "", `{"a": 1, "pad": "` + strings.Repeat("x", 200) + `"}`, 0, false, "more than 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, tt.retryAfter, tt.wantInv), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status == 302 {
					w.Header().Set("Location", "https://elsewhere.example.com/")
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			var v struct{ A int }
			err := New(Vendor{Name: "V"}, Options{MaxResponseBytes: 64}).Get(context.Background(), Access{Token: NewToken("tok"), BaseURL: srv.URL}, "acme", "/x", nil, &v)
			var (
				un  *Unavailable
				inv *Invalid
			)
			switch {
			case tt.wantWait > 0:
				if !errors.As(err, &un) || un.RetryAfter() != tt.wantWait {
					t.Errorf("%v, want Unavailable after %v", err, tt.wantWait)
				}
			case tt.wantNF:
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("%v, want ErrNotFound", err)
				}
			case tt.wantInv != "":
				if !errors.As(err, &inv) || !strings.Contains(err.Error(), tt.wantInv) || !strings.HasPrefix(err.Error(), "unexpected V answer") {
					t.Errorf("%v, want Invalid with %q", err, tt.wantInv)
				}
			default:
				if err != nil || v.A != 1 {
					t.Errorf("%v %+v", err, v)
				}
			}
		})
	}
}

// One tenant's busy slots do not hold another tenant's lookups.
func TestSlotsPerTenant(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	defer once.Do(func() { close(release) })
	// The held request outlasts the test: only the release ends it.
	c := New(Vendor{Name: "V"}, Options{Concurrency: 1, Timeout: time.Minute})
	a := Access{Token: NewToken("tok"), BaseURL: srv.URL}
	done := make(chan error, 1)
	go func() { done <- c.Get(context.Background(), a, "busy", "/slow", nil, &struct{}{}) }()
	<-arrived // the busy tenant's one slot is taken
	if err := c.Get(context.Background(), a, "other", "/fast", nil, &struct{}{}); err != nil {
		t.Errorf("another tenant waited on the busy one's slot: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Get(ctx, a, "busy", "/fast", nil, &struct{}{})
	if un, ok := errors.AsType[*Unavailable](err); !ok || !strings.Contains(un.Reason, "slot") {
		t.Errorf("the busy tenant's second lookup: %v, want Unavailable for want of a slot", err)
	}
	once.Do(func() { close(release) })
	<-done
}
