package hsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The recorded answers are the hubspot adapter's (../testdata/api), written from HubSpot's
// reference pages; see ../testdata/README.md.
const apiDir = "../testdata/api"

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(apiDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRecordedAnswers(t *testing.T) {
	th, err := ParseThreadJSON(read(t, "threads/3344556677.json"), "3344556677")
	if err != nil || th.TicketID() != "5150" || th.AssociatedContactID != "1201" {
		t.Errorf("thread %+v, %v", th, err)
	}
	none, err := ParseThreadJSON(read(t, "threads/3344556678.json"), "3344556678")
	if err != nil || none.TicketID() != "" {
		t.Errorf("thread without a ticket: %+v, %v", none, err)
	}
	m, err := ParseMessageJSON(read(t, "messages/1e4c9a3b7f2d4e0a9b8c7d6e5f4a3b2c.json"), "3344556677", "1e4c9a3b7f2d4e0a9b8c7d6e5f4a3b2c")
	if err != nil || m.Type != "MESSAGE" || m.Direction != "OUTGOING" || m.SenderActorID() != "A-7001" ||
		!m.CreatedAt.Equal(time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC)) {
		t.Errorf("message %+v, %v", m, err)
	}
	c, err := ParseMessageJSON(read(t, "messages/2f5d0b4c8a3e5f1b0c9d8e7f6a5b4c3d.json"), "3344556677", "2f5d0b4c8a3e5f1b0c9d8e7f6a5b4c3d")
	if err != nil || c.Type != "COMMENT" || c.Direction != "" {
		t.Errorf("comment %+v, %v", c, err)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"not JSON", `<html>`, "malformed JSON"},
		{"truncated", `{"id": "42", "type": "MESS`, "malformed JSON"},
		{"id a number", `{"id": 42}`, "id must be a JSON string"},
		{"another message", `{"id": "43", "type": "MESSAGE", "createdAt": "2026-03-02T09:00:00Z"}`, "asked for message 42"},
		{"another thread", `{"id": "42", "conversationsThreadId": "8", "type": "MESSAGE", "createdAt": "2026-03-02T09:00:00Z"}`, "belongs to thread \"8\""},
		{"no type", `{"id": "42", "createdAt": "2026-03-02T09:00:00Z"}`, "without type"},
		{"no createdAt", `{"id": "42", "type": "MESSAGE"}`, "without createdAt"},
		{"createdAt not a time", `{"id": "42", "type": "MESSAGE", "createdAt": "yesterday"}`, "malformed JSON"},
		{"senders not a list", `{"id": "42", "type": "MESSAGE", "createdAt": "2026-03-02T09:00:00Z", "senders": {}}`, "senders must be a JSON slice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMessageJSON([]byte(tt.give), "7", "42")
			var inv *Invalid
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v, want an Invalid containing %q", err, tt.want)
			}
		})
	}
	if _, err := ParseThreadJSON([]byte(`{"id": "7", "threadAssociations": {"associatedTicketId": "5150; DROP"}}`), "7"); err == nil {
		t.Error("a ticket id that is not a number was taken")
	}
	if _, err := ParseThreadJSON([]byte(`{"id": "8"}`), "7"); err == nil {
		t.Error("another thread was taken")
	}
}

// FuzzParse: no answer from the API makes the parsers panic, and what they accept is usable:
// a numeric ticket id or none, the message asked for with a type and a time.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"threads/3344556677.json", "threads/3344556678.json", "threads/3344556680.json",
		"messages/ca9ae3a0-65b6-4a3a-b1d6-6e0f9ad1e0c4.json", "messages/1e4c9a3b7f2d4e0a9b8c7d6e5f4a3b2c.json",
		"messages/2f5d0b4c8a3e5f1b0c9d8e7f6a5b4c3d.json", "owners.json"} {
		f.Add(read(f, name))
	}
	f.Add([]byte(`{"id":"3344556677","threadAssociations":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if th, err := ParseThreadJSON(body, "3344556677"); err == nil {
			if tk := th.TicketID(); tk != "" && !numeric(tk) {
				t.Errorf("ticket %q accepted", tk)
			}
		} else if _, ok := errors.AsType[*Invalid](err); !ok {
			t.Errorf("thread error %T %v, want *Invalid", err, err)
		}
		if m, err := ParseMessageJSON(body, "3344556677", "ca9ae3a0-65b6-4a3a-b1d6-6e0f9ad1e0c4"); err == nil {
			if m.ID != "ca9ae3a0-65b6-4a3a-b1d6-6e0f9ad1e0c4" || m.Type == "" || m.CreatedAt.IsZero() {
				t.Errorf("message %+v accepted", m)
			}
		} else if _, ok := errors.AsType[*Invalid](err); !ok {
			t.Errorf("message error %T %v, want *Invalid", err, err)
		}
		var page ownerPage
		_ = decode(body, &page)
	})
}

func TestCheckBaseURL(t *testing.T) {
	tests := []struct {
		give string
		ok   bool
	}{
		{"https://api.hubapi.com", true},
		{"https://api.hubapi.com/", true},
		{"https://hubspot-proxy.internal.example.com:8443", true},
		{"http://127.0.0.1:38211", true},
		{"http://[::1]:8080", true},
		{"http://localhost:8080", true},
		{"http://api.hubapi.com", false},
		{"http://10.0.0.5", false},
		{"ftp://api.hubapi.com", false},
		{"https://user:pass@api.hubapi.com", false},
		{"https://api.hubapi.com/v3", false},
		{"https://api.hubapi.com?x=1", false},
		{"api.hubapi.com", false},
		{"", false},
	}
	for _, tt := range tests {
		if err := CheckBaseURL(tt.give); (err == nil) != tt.ok {
			t.Errorf("CheckBaseURL(%q) = %v, want ok %v", tt.give, err, tt.ok)
		}
	}
}

// The token never shows: not in fmt's verbs, slog, JSON, nor in errors of failed requests.
func TestTokenNeverPrints(t *testing.T) {
	const secret = "pat-na1-0123456789-secret"
	a := Access{Token: NewToken(secret), BaseURL: "http://127.0.0.1:1"}
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("access", "access", a, "token", a.Token)
	j, _ := json.Marshal(a)
	shown := fmt.Sprintf("%v %+v %#v %s %q %x", a, a, a, a.Token, a.Token, a.Token) + out.String() + string(j)
	if strings.Contains(shown, secret) || strings.Contains(shown, "0123456789") {
		t.Errorf("token shown: %s", shown)
	}
	if !strings.Contains(shown, "[redacted]") {
		t.Errorf("no [redacted] in %s", shown)
	}
	if NewToken("").String() != "[unset]" || (Access{}).Configured() {
		t.Error("an empty token must read [unset] and configure nothing")
	}
	// A refused connection's error names neither the token nor the URL's query.
	_, err := New(Options{Timeout: time.Second}).Thread(context.Background(), a, "acme", "7")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("error %v", err)
	}
}

// The requests carry the token as a bearer, ask for the ticket association, and never follow a
// redirect (which would carry the token elsewhere).
func TestRequests(t *testing.T) {
	var redirected atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { redirected.Add(1) }))
	defer elsewhere.Close()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
		if strings.Contains(r.URL.Path, "/messages/") {
			http.Redirect(w, r, elsewhere.URL, http.StatusFound)
			return
		}
		_, _ = w.Write([]byte(`{"id": "7", "threadAssociations": {"associatedTicketId": "5150"}}`))
	}))
	defer srv.Close()
	c := New(Options{})
	a := Access{Token: NewToken("tok"), BaseURL: srv.URL + "/"}
	if th, err := c.Thread(context.Background(), a, "acme", "7"); err != nil || th.TicketID() != "5150" {
		t.Fatalf("%+v %v", th, err)
	}
	if _, err := c.Message(context.Background(), a, "acme", "7", "m-1"); err == nil {
		t.Error("a redirect was taken as an answer")
	}
	want := []string{"GET /conversations/v3/conversations/threads/7?association=TICKET Bearer tok",
		"GET /conversations/v3/conversations/threads/7/messages/m-1 Bearer tok"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if redirected.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

// The owner list is read page by page, kept an hour, and read again for an unknown user at
// most once a minute; another token (another portal) starts afresh.
func TestOwnerCache(t *testing.T) {
	var reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reads.Add(1)
		if r.URL.Query().Get("limit") != "500" {
			t.Errorf("limit %q", r.URL.Query().Get("limit"))
		}
		if r.URL.Query().Get("after") == "" {
			_, _ = w.Write([]byte(`{"results": [{"id": "8812", "userId": 7001}], "paging": {"next": {"after": "p2", "link": "x"}}}`))
			return
		}
		_, _ = w.Write([]byte(`{"results": [{"id": "8813", "userId": 7002}, {"id": "8814", "userId": null}]}`))
	}))
	defer srv.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := New(Options{Now: func() time.Time { return now }})
	a := Access{Token: NewToken("tok"), BaseURL: srv.URL}
	ask := func(user string) (string, bool) {
		t.Helper()
		o, ok, err := c.OwnerOfUser(context.Background(), a, "acme", user)
		if err != nil {
			t.Fatal(err)
		}
		return o, ok
	}
	steps := []struct {
		name      string
		advance   time.Duration
		user      string
		wantOwner string
		wantReads int32
	}{
		{"first page", 0, "7001", "8812", 2},
		{"second page, cached", 0, "7002", "8813", 2},
		{"an owner id is its own owner", 0, "8814", "8814", 2},
		{"unknown user, list just read", 10 * time.Second, "7999", "", 2},
		{"unknown user, a minute on", time.Minute, "7999", "", 4},
		{"known user, within the hour", 30 * time.Minute, "7001", "8812", 4},
		{"known user, list stale", time.Hour, "7001", "8812", 6},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		o, ok := ask(s.user)
		if o != s.wantOwner || ok != (s.wantOwner != "") || reads.Load() != s.wantReads {
			t.Errorf("%s: owner %q %v after %d reads, want %q after %d", s.name, o, ok, reads.Load(), s.wantOwner, s.wantReads)
		}
	}
	b := Access{Token: NewToken("other-portal"), BaseURL: srv.URL}
	if _, _, err := c.OwnerOfUser(context.Background(), b, "acme", "7001"); err != nil || reads.Load() != 8 {
		t.Errorf("another token reused the list (%d reads, %v)", reads.Load(), err)
	}
}
