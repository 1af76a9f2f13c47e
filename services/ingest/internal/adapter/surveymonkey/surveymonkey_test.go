package surveymonkey

import (
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
)

// settings is a tenant's surveymonkey configuration, as testdata/README.md states it.
var settings = adapter.Settings{TicketField: "ticket_id", AgentField: "agent", ScoreQuestion: "667461690", CommentQuestion: "667461691", Scale: "nps"}

// configured is the adapter as the webhook handler runs it for one tenant.
type configured struct{ *Adapter }

func (c configured) Map(d adapter.Delivery) (adapter.Result, error) {
	d.Settings = settings
	return c.Adapter.Map(d)
}

func TestGolden(t *testing.T) { adaptertest.Golden(t, configured{New()}, "testdata") }

// TestRedeliveryIsTheSameEvent: the same response details posted twice are one event; an edit
// of the response (a new date_modified) is a new event, which kpi counts as a re-rating of the
// ticket, replacing the first.
func TestRedeliveryIsTheSameEvent(t *testing.T) {
	a := configured{New()}
	d := adaptertest.Delivery(t, "testdata", "details-nps-9-with-comment")
	first, again := adaptertest.One(t, a, d), adaptertest.One(t, a, d)
	edited := adaptertest.One(t, a, adaptertest.Delivery(t, "testdata", "details-edited"))
	if first.ID != again.ID {
		t.Errorf("one response, two ids: %s, %s", first.ID, again.ID)
	}
	if edited.ID == first.ID || edited.TicketID != first.TicketID || !edited.OccurredAt.After(first.OccurredAt) {
		t.Errorf("edit %+v: want a new, later event on the same ticket as %+v", edited, first)
	}
}

// TestWebhookAloneCarriesNoScore: what SurveyMonkey itself sends is accepted and skipped, never
// an event: the answers are only in the API.
func TestWebhookAloneCarriesNoScore(t *testing.T) {
	res := adaptertest.Map(t, configured{New()}, adaptertest.Delivery(t, "testdata", "notify-response-completed"))
	if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != "fetch_required" {
		t.Errorf("result %+v, want one fetch_required skip", res)
	}
}

func FuzzMap(f *testing.F) {
	for _, name := range adaptertest.Cases(f, "testdata") {
		f.Add(adaptertest.Delivery(f, "testdata", name).Body)
	}
	a := configured{New()}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := a.Map(adapter.Delivery{Body: body, Received: adaptertest.Received})
		if err == nil {
			adaptertest.Valid(t, res.Events)
		}
	})
}
