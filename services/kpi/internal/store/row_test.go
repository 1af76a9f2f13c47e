package store

import (
	"reflect"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func TestRowRoundTrip(t *testing.T) {
	at := t0.UnixMilli()
	tests := []struct {
		name string
		give contrib.Ticket
	}{
		{"nothing yet", contrib.Ticket{FirstResponseMillis: -1, ResolutionMillis: -1, UpdatedMillis: at}},
		{"solved, rated, reopened, breached", contrib.Ticket{
			Status: tpv1.TicketStatus_TICKET_STATUS_SOLVED, Priority: tpv1.Priority_PRIORITY_URGENT,
			CreatedMillis: at - 7_200_000, UpdatedMillis: at, FirstResponseMillis: 600_000, FirstResponseAt: at - 6_600_000,
			ResolutionMillis: 7_000_000, ResolvedAt: at - 200_000, Reopens: 2, Rating: 1,
			SLAFirstBreached: true, SLAResolutionBreached: true,
			Figures: []contrib.Figure{
				{Kind: contrib.FirstResponseFigure, AtMillis: at - 6_600_000, Agent: `<script>"ü"</script>`, Team: "sup port/1"},
				{Kind: contrib.ReopenFigure, AtMillis: at - 300_000, Agent: "", Team: "sup port/1"},
				{Kind: contrib.ResolutionFigure, AtMillis: at - 200_000, Agent: "bob", Team: ""},
				{Kind: contrib.RatingFigure, AtMillis: at, Agent: "bob", Team: ""},
			}}},
		{"reopened, resolved before", contrib.Ticket{Status: tpv1.TicketStatus_TICKET_STATUS_OPEN, UpdatedMillis: -5,
			FirstResponseMillis: -1, ResolutionMillis: -1, ResolvedAt: -1000, SLANextBreached: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRow(encodeRow(&tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.give) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tt.give)
			}
		})
	}
}

// A row comes back from Redis, where anything may have written it: decoding never panics, and
// what decodes encodes back to a row that decodes the same.
func FuzzDecodeRow(f *testing.F) {
	f.Add(encodeRow(&contrib.Ticket{FirstResponseMillis: -1, ResolutionMillis: -1}))
	f.Add(encodeRow(&contrib.Ticket{CreatedMillis: 1, UpdatedMillis: 9, FirstResponseMillis: 3, FirstResponseAt: 4, ResolvedAt: 8,
		ResolutionMillis: 7, Reopens: 1, Rating: 5, Figures: []contrib.Figure{{Kind: contrib.RatingFigure, AtMillis: 9, Agent: "a", Team: "t"}}}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		row, err := DecodeRow(b)
		if err != nil {
			return
		}
		again, err := DecodeRow(encodeRow(&row))
		if err != nil || !reflect.DeepEqual(again, row) {
			t.Fatalf("decoded %+v, re-encoded decodes to %+v, %v", row, again, err)
		}
	})
}
