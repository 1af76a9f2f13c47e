package chaos

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestParseKinds(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    []string
		wantErr bool
	}{
		{name: "empty is all", give: "", want: Kinds},
		{name: "all", give: "all", want: Kinds},
		{name: "some, spaced", give: "kill, disk", want: []string{KindKill, KindDisk}},
		{name: "unknown", give: "kill,flood", wantErr: true},
		{name: "empty item", give: "kill,", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKinds(tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseKinds(%q) error %v, want error %v", tt.give, err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseKinds(%q) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func FuzzParseKinds(f *testing.F) {
	for _, s := range []string{"", "all", "kill,pause", "disk,,", "ü,<script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kinds, err := ParseKinds(s)
		if err != nil {
			return
		}
		for _, k := range kinds {
			if !slices.Contains(Kinds, k) {
				t.Fatalf("ParseKinds(%q) accepted %q", s, k)
			}
		}
	})
}

// A ticket has the events ticketEvents says (the load's rate depends on it), each with a unique
// id, none in the future, and an answered one is replied to within the first-response target.
func TestNewTicket(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	ids := map[string]bool{}
	for n := 0; n < 200; n++ {
		tk := NewTicket(n, now, rnd)
		if len(tk.Events) != ticketEvents(n) {
			t.Fatalf("ticket %d has %d events, ticketEvents says %d", n, len(tk.Events), ticketEvents(n))
		}
		if tk.Answered && (tk.Reply <= 0 || tk.Reply >= FirstResponseSLA || tk.Solve < tk.Reply || tk.Score < 1 || tk.Score > 5) {
			t.Errorf("ticket %d: reply %s, solve %s, score %d", n, tk.Reply, tk.Solve, tk.Score)
		}
		for _, e := range tk.Events {
			id := e["id"].(string)
			if ids[id] {
				t.Errorf("event id %q twice", id)
			}
			ids[id] = true
			at, err := time.Parse(time.RFC3339, e["occurred_at"].(string))
			if err != nil || at.After(now) {
				t.Errorf("event %q occurred_at %v (%v), after now", id, e["occurred_at"], err)
			}
		}
	}
}

func sign(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// The receiver accepts only correctly signed messages, logs which message carried each change,
// and counts a retry of the same webhook-id as a repeat, not a second message.
func TestReceiver(t *testing.T) {
	key := []byte("chaos-receiver-secret-32-bytes!!")
	r, err := StartReceiver("whsec_"+base64.StdEncoding.EncodeToString(key), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	body, _ := json.Marshal(map[string]any{"type": "ticketpulse.notification", "changes": []any{
		map[string]any{"kind": "CHANGE_KIND_TRIGGERED", "sequence": "1", "escalation": map[string]any{"id": "esc <1>/ü", "subjectId": "T 1"}},
	}})
	send := func(id, sig string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, r.URL, bytes.NewReader(body))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", "1700000000")
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send("msg-1", "v1,"+base64.StdEncoding.EncodeToString([]byte("forged"))); got != http.StatusUnauthorized {
		t.Errorf("forged signature: %d, want 401", got)
	}
	if got := send("msg-1", "v1,old "+sign(key, "msg-1", "1700000000", body)); got != http.StatusNoContent {
		t.Errorf("signed: %d, want 204", got)
	}
	if got := send("msg-1", sign(key, "msg-1", "1700000000", body)); got != http.StatusNoContent {
		t.Errorf("retry: %d, want 204", got)
	}
	carried, changes := r.Carried()
	k := changeKey("esc <1>/ü", 1)
	if ids := carried[k]; len(ids) != 1 || ids[0] != "msg-1" {
		t.Errorf("change %s carried by %v, want [msg-1]", k, ids)
	}
	if changes[k].GetEscalation().GetSubjectId() != "T 1" {
		t.Errorf("change %s = %v", k, changes[k])
	}
	if r.Repeats != 1 || len(r.bad()) != 1 {
		t.Errorf("repeats %d, bad %v; want 1 repeat and the forged one", r.Repeats, r.bad())
	}
	if got := send("msg-2", sign(key, "msg-2", "1700000000", body)); got != http.StatusNoContent {
		t.Fatalf("second message: %d", got)
	}
	if carried, _ := r.Carried(); len(carried[k]) != 2 {
		t.Errorf("change %s carried by %v, want two messages", k, carried[k])
	}
}
