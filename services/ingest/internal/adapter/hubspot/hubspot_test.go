package hubspot

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// The fixtures' sources are listed in testdata/README.md.

func TestGolden(t *testing.T) {
	adaptertest.Golden(t, New(), "testdata")
}

// TestConversation replays a recorded ticket life: created from a form, assigned by a
// workflow, worked on, waiting on the contact, closed.
func TestConversation(t *testing.T) {
	want := map[string][]string{
		"01-ticket-created":     {"ticket_created"},
		"02-assigned":           {"ticket_assigned"},
		"03-waiting-on-us":      {"status_changed"},
		"04-waiting-on-contact": {"status_changed"},
		"05-closed":             {"status_changed"},
	}
	events, _ := adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "conversation"), want)
	var statuses []string
	for _, ev := range events {
		if ev.Type == "status_changed" {
			statuses = append(statuses, ev.Status)
		}
	}
	if got := strings.Join(statuses, ","); got != "open,pending,closed" {
		t.Errorf("statuses %s, want open,pending,closed", got)
	}
}

func body(stage string) []byte {
	return []byte(fmt.Sprintf(`[{"eventId":7,"portalId":62515,"objectId":4203,"occurredAt":1772442000000,`+
		`"subscriptionType":"ticket.propertyChange","propertyName":"hs_pipeline_stage","propertyValue":%q}]`, stage))
}

func TestStageMapping(t *testing.T) {
	tenant := New().For(&tenants.SourceConfig{Statuses: map[string]string{"98273651": "on_hold", "4": "solved"}})
	tests := []struct {
		name  string
		a     adapter.Adapter
		stage string
		want  string // "" is skipped as unmapped
	}{
		{"default new", New(), "1", "new"},
		{"default waiting on contact", New(), "2", "pending"},
		{"default waiting on us", New(), "3", "open"},
		{"default closed", New(), "4", "closed"},
		{"custom stage unmapped by default", New(), "98273651", ""},
		{"tenant maps a custom stage", tenant, "98273651", "on_hold"},
		{"tenant overrides a default", tenant, "4", "solved"},
		{"tenant keeps the other defaults", tenant, "2", "pending"},
		{"stage ids are exact", tenant, " 4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := adaptertest.Map(t, tt.a, adapter.Delivery{Header: http.Header{}, Body: body(tt.stage), Received: adaptertest.Received})
			got := ""
			if len(res.Events) == 1 {
				got = res.Events[0].Status
			}
			if got != tt.want || (tt.want == "") != (len(res.Skipped) == 1 && res.Skipped[0].Reason == SkipUnmappedStage) {
				t.Errorf("got %+v, want status %q", res, tt.want)
			}
		})
	}
}

// A retry (attemptNumber 1, received later) maps to the same event ids; another event of the
// same ticket does not.
func TestRetryKeepsEventIDs(t *testing.T) {
	d := adaptertest.Delivery(t, "testdata", "batch-created-with-properties")
	first, err := adaptertest.Retry(t, New(), d, func(d *adapter.Delivery) {
		d.Body = []byte(strings.ReplaceAll(string(d.Body), `"attemptNumber": 0`, `"attemptNumber": 1`))
	})
	if err != nil || len(first.Events) != 3 {
		t.Fatalf("%v %+v", err, first)
	}
	other := adaptertest.Map(t, New(), adapter.Delivery{Body: body("3")})
	again := adaptertest.Map(t, New(), adapter.Delivery{Body: body("4")})
	if other.Events[0].ID == again.Events[0].ID {
		t.Error("two different stage changes share an event id")
	}
}

func FuzzMap(f *testing.F) {
	adaptertest.Fuzz(f, New(), "testdata")
}
