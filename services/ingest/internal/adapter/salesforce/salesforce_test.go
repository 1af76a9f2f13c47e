package salesforce

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// The fixtures' sources are listed in testdata/README.md.

// TestGolden covers the Flow callouts (testdata/*.json).
func TestGolden(t *testing.T) {
	adaptertest.Golden(t, New(), "testdata")
}

// xmlCases returns the Outbound Message cases of dir, sorted.
func xmlCases(t testing.TB, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".xml")
	}
	slices.Sort(names)
	return names
}

// outbound reads the Outbound Message case name of dir as a delivery, with its headers.
func outbound(t testing.TB, dir, name string) adapter.Delivery {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(dir, name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	raw, err := os.ReadFile(filepath.Join(dir, name+".headers"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return adapter.Delivery{Header: h, Body: body, Received: adaptertest.Received}
}

// TestGoldenOutbound is adaptertest.Golden for the Outbound Messages (testdata/*.xml), which
// that runner does not read; -update rewrites their golden files too.
func TestGoldenOutbound(t *testing.T) {
	update := flag.Lookup("update").Value.(flag.Getter).Get().(bool)
	names := xmlCases(t, "testdata")
	if len(names) < 15 {
		t.Fatalf("%d Outbound Message cases, want at least 15", len(names))
	}
	malformed := 0
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			res, err := New().Map(outbound(t, "testdata", name))
			var got adaptertest.Outcome
			if err != nil {
				var ps canonical.Problems
				if !errors.As(err, &ps) {
					t.Fatalf("Map: %v (want canonical.Problems)", err)
				}
				got.Problems = ps.List
				malformed++
			} else {
				got.Events, got.Skipped = res.Events, res.Skipped
				adaptertest.Valid(t, res.Events)
			}
			if strings.HasPrefix(name, "malformed-") != (err != nil) {
				t.Errorf("malformed-* cases must be rejected, the others mapped: %v", err)
			}
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON = append(gotJSON, '\n')
			golden := filepath.Join("testdata", name+".golden.json")
			if update {
				if err := os.WriteFile(golden, gotJSON, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run the test with -update to write it, then check it by hand)", err)
			}
			if !bytes.Equal(gotJSON, want) {
				t.Errorf("%s differs from %s:\n got: %s\nwant: %s", name, golden, gotJSON, want)
			}
		})
	}
	if malformed < 4 {
		t.Errorf("%d malformed Outbound Messages, want at least 4", malformed)
	}
}

// TestConversation replays a recorded Case life of Outbound Messages in order.
func TestConversation(t *testing.T) {
	dir := filepath.Join("testdata", "conversation")
	want := map[string][]string{
		"01-case-created":       {"ticket_created"},
		"02-assigned-to-agent":  {"status_changed", "ticket_assigned", "priority_changed"},
		"03-private-note":       {"agent_message"},
		"04-first-public-reply": {"agent_message"},
		"05-closed":             {"status_changed", "ticket_assigned", "priority_changed"},
	}
	names := xmlCases(t, dir)
	if len(names) != len(want) {
		t.Fatalf("%d deliveries, want %d", len(names), len(want))
	}
	var all []canonical.Event
	seen := map[string]bool{}
	for _, name := range names {
		res := adaptertest.Map(t, New(), outbound(t, dir, name))
		adaptertest.Valid(t, res.Events)
		var types []string
		for _, ev := range res.Events {
			types = append(types, ev.Type)
			if seen[ev.ID] {
				t.Errorf("%s: event id %s used twice", name, ev.ID)
			}
			seen[ev.ID] = true
		}
		if !slices.Equal(types, want[name]) || len(res.Skipped) > 0 {
			t.Errorf("%s: types %v skipped %v, want %v", name, types, res.Skipped, want[name])
		}
		all = append(all, res.Events...)
	}
	if got, expect := adaptertest.Derive(t, all), adaptertest.ReadExpectation(t, dir); got != expect {
		t.Errorf("derived %+v, expect.json says %+v", got, expect)
	}
}

// A retried Outbound Message (same notifications, received later) maps to the same events.
func TestRetryKeepsEventIDs(t *testing.T) {
	for _, name := range []string{"om-case-closed", "om-two-cases", "om-comment-public"} {
		res, err := adaptertest.Retry(t, New(), outbound(t, "testdata", name), nil)
		if err != nil || len(res.Events) == 0 {
			t.Errorf("%s: %v %+v", name, err, res)
		}
	}
	d := adaptertest.Delivery(t, "testdata", "flow-case-status-closed")
	if res, err := adaptertest.Retry(t, New(), d, nil); err != nil || len(res.Events) != 1 {
		t.Errorf("flow retry: %v %+v", err, res)
	}
}

func TestStatusMapping(t *testing.T) {
	tenant := New().For(&tenants.SourceConfig{Statuses: map[string]string{"Awaiting Parts": "on_hold", "Closed": "solved"}})
	body, err := os.ReadFile(filepath.Join("testdata", "om-case-custom-status-open.xml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		a      adapter.Adapter
		status string
		closed string
		want   string // "" is skipped as unmapped
	}{
		{"default: not closed is open", New(), "Awaiting Parts", "false", "open"},
		{"default: closed custom status", New(), "Done", "true", "closed"},
		{"default: standard value", New(), "Escalated", "false", "open"},
		{"default: case-insensitive", New(), "waiting on customer", "false", "pending"},
		{"default: unknown without IsClosed", New(), "Awaiting Parts", "", ""},
		{"tenant mapping first", tenant, "Awaiting Parts", "false", "on_hold"},
		{"tenant overrides a default", tenant, "Closed", "true", "solved"},
		{"tenant mapping is exact", tenant, "awaiting parts", "false", "open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := strings.Replace(string(body), "<sf:Status>Awaiting Parts</sf:Status>", "<sf:Status>"+tt.status+"</sf:Status>", 1)
			b = strings.Replace(b, "<sf:IsClosed>false</sf:IsClosed>", "<sf:IsClosed>"+tt.closed+"</sf:IsClosed>", 1)
			res := adaptertest.Map(t, tt.a, adapter.Delivery{Header: http.Header{"Content-Type": {"text/xml"}}, Body: []byte(b)})
			got := ""
			for _, ev := range res.Events {
				if ev.Type == "status_changed" {
					got = ev.Status
				}
			}
			if got != tt.want {
				t.Errorf("status %q, want %q (%+v)", got, tt.want, res)
			}
		})
	}
}

func TestAcknowledge(t *testing.T) {
	ct, body, ok := New().Acknowledge(http.Header{"Content-Type": {"text/xml; charset=utf-8"}})
	if !ok || ct != "text/xml; charset=utf-8" {
		t.Fatalf("Acknowledge = %q, %v", ct, ok)
	}
	// What Salesforce reads: notificationsResponse/Ack = true in a SOAP 1.1 envelope.
	var env struct {
		XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
		Body    struct {
			Response struct {
				Ack string `xml:"http://soap.sforce.com/2005/09/outbound Ack"`
			} `xml:"http://soap.sforce.com/2005/09/outbound notificationsResponse"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil || env.Body.Response.Ack != "true" {
		t.Errorf("ack %s: %v, Ack %q", body, err, env.Body.Response.Ack)
	}
	if _, _, ok := New().Acknowledge(http.Header{"Content-Type": {"application/json"}}); ok {
		t.Error("a Flow callout got the SOAP acknowledgement")
	}
}

func TestCheckContentType(t *testing.T) {
	for give, want := range map[string]bool{
		"text/xml; charset=utf-8": true, "text/xml": true, "application/xml": true, "application/json": true,
		"text/plain": false, "": false, "text/xml; charset=iso-8859-1": false, "multipart/related": false,
	} {
		if got := New().CheckContentType(give) == ""; got != want {
			t.Errorf("%q accepted %v, want %v", give, got, want)
		}
	}
}

// FuzzFlow fuzzes the Flow callouts (JSON).
func FuzzFlow(f *testing.F) {
	adaptertest.Fuzz(f, New(), "testdata")
}

// FuzzOutbound fuzzes Outbound Messages: Map never panics, rejects with canonical.Problems only,
// and what it maps passes canonical validation.
func FuzzOutbound(f *testing.F) {
	for _, dir := range []string{"testdata", filepath.Join("testdata", "conversation")} {
		for _, name := range xmlCases(f, dir) {
			body, err := os.ReadFile(filepath.Join(dir, name+".xml"))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(body)
		}
	}
	end := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := New().Map(adapter.Delivery{Header: http.Header{"Content-Type": {"text/xml"}}, Body: body})
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

// BenchmarkOutbound maps a full Outbound Message: 100 Case notifications, the most Salesforce
// puts in one (about 76 kB), read twice (the well-formedness pass, the decode); package verify's
// organisation check reads it once more.
func BenchmarkOutbound(b *testing.B) {
	one, err := os.ReadFile(filepath.Join("testdata", "om-case-closed.xml"))
	if err != nil {
		b.Fatal(err)
	}
	s := string(one)
	start, end := strings.Index(s, "<Notification>"), strings.LastIndex(s, "</Notification>")+len("</Notification>")
	body := []byte(s[:start] + strings.Repeat(s[start:end], MaxNotifications) + s[end:])
	d := adapter.Delivery{Header: http.Header{"Content-Type": {"text/xml"}}, Body: body}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := New().Map(d)
		if err != nil || len(res.Events) != 3*MaxNotifications {
			b.Fatalf("%v, %d events", err, len(res.Events))
		}
	}
}
