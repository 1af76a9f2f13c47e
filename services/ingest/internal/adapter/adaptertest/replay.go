package adaptertest

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Retry maps d, then maps it again as the source's retry would arrive: received 37 minutes
// later under another delivery id, with change applied when it is not nil (another trigger
// name, say). Event ids must come from the source's data, never from the delivery, so it fails
// t unless both mappings give the same result or both fail. It returns the first mapping.
func Retry(t testing.TB, a adapter.Adapter, d adapter.Delivery, change func(*adapter.Delivery)) (adapter.Result, error) {
	t.Helper()
	first, err1 := a.Map(d)
	d.Received = d.Received.Add(37 * time.Minute)
	d.DeliveryID = "retry-" + d.DeliveryID
	d.Header = d.Header.Clone()
	for _, name := range deliveryIDHeaders {
		if d.Header.Get(name) != "" {
			d.Header.Set(name, d.DeliveryID)
		}
	}
	if change != nil {
		change(&d)
	}
	again, err2 := a.Map(d)
	if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(first, again) {
		t.Errorf("a retry mapped differently:\n%+v (%v)\n%+v (%v)", first, err1, again, err2)
	}
	return first, err1
}

// Step is one delivery of a replayed conversation and what it became.
type Step struct {
	Name   string
	Result adapter.Result
}

// Conversation replays the recorded ticket life in dir (its cases in name order, e.g.
// 01-ticket-created.json ...) through a. Every delivery must map and its events must be valid
// canonical events; it returns what each became, in order, for the source's own checks.
func Conversation(t testing.TB, a adapter.Adapter, dir string) []Step {
	t.Helper()
	names := Cases(t, dir)
	if len(names) == 0 {
		t.Fatalf("no deliveries in %s", dir)
	}
	steps := make([]Step, 0, len(names))
	for _, name := range names {
		res, err := a.Map(Delivery(t, dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		Valid(t, res.Events)
		steps = append(steps, Step{Name: name, Result: res})
	}
	return steps
}

// Events returns the events of steps, in order.
func Events(steps []Step) []canonical.Event {
	var events []canonical.Event
	for _, s := range steps {
		events = append(events, s.Result.Events...)
	}
	return events
}

// Expectation is a conversation's expect.json: the figures the KPI engine must derive from it,
// which the end-to-end test checks as well. A source's file may leave some out.
type Expectation struct {
	AgentID              string `json:"agent_id"`
	TeamID               string `json:"team_id"`
	FirstResponseSeconds int    `json:"first_response_seconds"`
	NextResponseSeconds  int    `json:"next_response_seconds"`
	Resolutions          int    `json:"resolutions"`
	CSATCount            int    `json:"csat_count"`
	CSATScore            int    `json:"csat_score"`
	TicketID             string `json:"ticket_id"`
}

// ReadExpectation reads dir/expect.json.
func ReadExpectation(t testing.TB, dir string) Expectation {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var x Expectation
	if err := json.Unmarshal(raw, &x); err != nil {
		t.Fatalf("expect.json: %v", err)
	}
	return x
}

// Derive computes an Expectation from a conversation's events in the simplest way
// (DESIGN.md §5), to check that the recorded conversation says what expect.json claims.
func Derive(t testing.TB, events []canonical.Event) Expectation {
	t.Helper()
	var x Expectation
	var created, waiting time.Time
	answered := false
	for _, ev := range events {
		if x.TicketID == "" {
			x.TicketID = ev.TicketID
		} else if ev.TicketID != x.TicketID {
			t.Errorf("event %s is on ticket %s, not %s", ev.ID, ev.TicketID, x.TicketID)
		}
		isResponse := ev.Type == "agent_message" && ev.Actor.Kind == "agent" && ev.Public != nil && *ev.Public
		switch {
		case ev.Type == "ticket_created":
			created = ev.OccurredAt
		case isResponse && !answered:
			answered = true
			x.FirstResponseSeconds = int(ev.OccurredAt.Sub(created).Seconds())
			x.AgentID = ev.Actor.ID
		case isResponse && !waiting.IsZero():
			x.NextResponseSeconds = int(ev.OccurredAt.Sub(waiting).Seconds())
			waiting = time.Time{}
		case ev.Type == "customer_message" && answered && waiting.IsZero():
			waiting = ev.OccurredAt
		case ev.Type == "status_changed" && (ev.Status == "solved" || ev.Status == "closed"):
			x.Resolutions++
			x.TeamID = ev.TeamID
			if ev.AssigneeID != x.AgentID {
				t.Errorf("solved with assignee %q, want the responding agent %q", ev.AssigneeID, x.AgentID)
			}
		case ev.Type == "satisfaction_rated":
			x.CSATCount++
			x.CSATScore = ev.Satisfaction.Score
		}
	}
	return x
}

// Fuzz runs the fuzz target every adapter needs: seeded with every recorded delivery under dir
// (its .headers text and body), Map must never panic, must reject with canonical.Problems
// only, and the events it makes must pass canonical validation. Headers are fuzzed too, since
// some sources (Help Scout) name the event there; lines that are not "Name: value" are dropped.
func Fuzz(f *testing.F, a adapter.Adapter, dir string) {
	f.Helper()
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && e.Name() == "fuzz" { // the fuzzer's own corpus
			return filepath.SkipDir
		}
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".golden.json") || name == "expect.json" {
			return nil
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		headers, err := os.ReadFile(strings.TrimSuffix(path, ".json") + ".headers")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		f.Add(string(headers), body)
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	// Any instant the canonical form can hold is accepted here: the future-skew check belongs
	// to the webhook handler, which knows the receive time.
	end := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	f.Fuzz(func(t *testing.T, headers string, body []byte) {
		res, err := a.Map(delivery(lenientHeaders(headers), body))
		if err != nil {
			var ps canonical.Problems
			if !errors.As(err, &ps) || len(ps.List) == 0 {
				t.Fatalf("error %T %v, want canonical.Problems", err, err)
			}
			return
		}
		if err := canonical.Validate(res.Events, canonical.Options{Tenant: "acme", Now: end}); err != nil {
			t.Fatalf("invalid canonical events: %v\n%+v", err, res.Events)
		}
	})
}

// lenientHeaders reads what "Name: value" lines there are in s and drops the rest.
func lenientHeaders(s string) http.Header {
	h := http.Header{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) != "" {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return h
}
