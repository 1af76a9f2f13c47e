package qualtrics

import (
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
)

// settings is a tenant's qualtrics configuration, as testdata/README.md states it.
var settings = adapter.Settings{TicketField: "ticket_id", AgentField: "agent_id", ScoreQuestion: "QID3", CommentQuestion: "QID4", Scale: "1-10"}

// configured is the adapter as the webhook handler runs it for one tenant.
type configured struct{ *Adapter }

func (c configured) Map(d adapter.Delivery) (adapter.Result, error) {
	d.Settings = settings
	return c.Adapter.Map(d)
}

func TestGolden(t *testing.T) { adaptertest.Golden(t, configured{New()}, "testdata") }

// TestRedeliveryIsTheSameEvent: one response is one event however often it is posted.
func TestRedeliveryIsTheSameEvent(t *testing.T) {
	a := configured{New()}
	d := adaptertest.Delivery(t, "testdata", "workflow-score-9-with-comment")
	first, again := adaptertest.One(t, a, d), adaptertest.One(t, a, d)
	other := adaptertest.One(t, a, adaptertest.Delivery(t, "testdata", "workflow-score-1"))
	if first.ID != again.ID || first.ID == other.ID {
		t.Errorf("ids %s, %s, %s: want one id per response", first.ID, again.ID, other.ID)
	}
}

// TestSubscriptionAloneCarriesNoScore: an event subscription names the response only.
func TestSubscriptionAloneCarriesNoScore(t *testing.T) {
	res := adaptertest.Map(t, configured{New()}, adaptertest.Delivery(t, "testdata", "subscription-completed"))
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
