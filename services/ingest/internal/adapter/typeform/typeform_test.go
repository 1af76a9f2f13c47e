package typeform

import (
	"bytes"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
)

// settings is a tenant's typeform configuration, as the golden files' README states it.
var (
	settings       = adapter.Settings{TicketField: "ticket_id", AgentField: "agent_id", ScoreQuestion: "csat", CommentQuestion: "why", Scale: "1-5"}
	npsSettings    = adapter.Settings{TicketField: "ticket_id", ScoreQuestion: "nps", Scale: "nps"}
	thumbsSettings = adapter.Settings{TicketField: "ticket_id", ScoreQuestion: "solved", Scale: "thumbs"}
)

// configured is the adapter as the webhook handler runs it for one tenant: every delivery
// carries the tenant's settings.
type configured struct {
	*Adapter
	settings adapter.Settings
}

func (c configured) Map(d adapter.Delivery) (adapter.Result, error) {
	d.Settings = c.settings
	return c.Adapter.Map(d)
}

func TestGolden(t *testing.T) {
	t.Run("1-5", func(t *testing.T) { adaptertest.Golden(t, configured{New(), settings}, "testdata") })
	t.Run("nps", func(t *testing.T) { adaptertest.Golden(t, configured{New(), npsSettings}, "testdata/nps") })
	t.Run("thumbs", func(t *testing.T) { adaptertest.Golden(t, configured{New(), thumbsSettings}, "testdata/thumbs") })
}

// TestRedeliveryIsTheSameEvent: Typeform retries with the same body, and a response sent again
// under another event_id (a webhook re-created, a manual resend) is still the one response.
func TestRedeliveryIsTheSameEvent(t *testing.T) {
	a := configured{New(), settings}
	d := adaptertest.Delivery(t, "testdata", "rating-5-with-comment")
	first := adaptertest.One(t, a, d)
	again := adaptertest.One(t, a, d)
	d.Body = bytes.Replace(d.Body, []byte("01JDQ3R6W4N9K5XH2Y7T8ZB1MC"), []byte("01JDQ9ZZZZZZZZZZZZZZZZZZZZ"), 1)
	resent := adaptertest.One(t, a, d)
	if first.ID != again.ID || first.ID != resent.ID {
		t.Errorf("event ids %s, %s, %s: want one id for one response", first.ID, again.ID, resent.ID)
	}
	other := adaptertest.One(t, a, adaptertest.Delivery(t, "testdata", "rating-1-no-comment"))
	if other.ID == first.ID {
		t.Error("two responses share an event id")
	}
}

func TestMissingSettingsIsNotTheSendersFault(t *testing.T) {
	d := adaptertest.Delivery(t, "testdata", "rating-5-with-comment")
	if _, err := New().Map(d); err == nil {
		t.Fatal("mapped a response without knowing the ticket field")
	}
	adaptertest.Problem(t, configured{New(), settings}, adapter.Delivery{Body: []byte(`{"event_type":"form_response"}`)}, "form_response")
}

func FuzzMap(f *testing.F) {
	for _, name := range adaptertest.Cases(f, "testdata") {
		f.Add(adaptertest.Delivery(f, "testdata", name).Body)
	}
	a := configured{New(), settings}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := a.Map(adapter.Delivery{Body: body, Received: adaptertest.Received})
		if err == nil {
			adaptertest.Valid(t, res.Events)
		}
	})
}
