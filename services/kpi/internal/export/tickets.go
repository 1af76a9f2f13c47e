package export

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/grpcapi"
)

// TicketLister is what the tickets export reads: KpiService.ListTicketKpis (the server itself,
// in process; the credential is checked by the HTTP handler).
type TicketLister interface {
	ListTicketKpis(ctx context.Context, req *ticketpulsev1.ListTicketKpisRequest) (*ticketpulsev1.ListTicketKpisResponse, error)
}

// Tickets is the export of the drill-down index: one row per ticket with its own figures.
type Tickets struct {
	lister TicketLister
}

var _ Source = (*Tickets)(nil)

// NewTickets returns the tickets export read through l. A kpi without the index answers
// FailedPrecondition on the first page, which the handler answers 409 before any row.
func NewTickets(l TicketLister) *Tickets { return &Tickets{lister: l} }

// TicketColumns are the columns of the tickets export.
var TicketColumns = []Column{
	{Name: "tenant", Kind: Text},
	{Name: "ticket_id", Kind: Text},
	{Name: "agent_id", Kind: Text},
	{Name: "team_id", Kind: Text},
	{Name: "status", Kind: Text},
	{Name: "priority", Kind: Text},
	{Name: "created_at", Kind: Instant, Optional: true},
	{Name: "first_response_seconds", Kind: Float, Optional: true},
	{Name: "first_response_at", Kind: Instant, Optional: true},
	{Name: "resolution_seconds", Kind: Float, Optional: true},
	{Name: "resolved_at", Kind: Instant, Optional: true},
	{Name: "reopens", Kind: Int},
	{Name: "rating", Kind: Int, Optional: true},
	{Name: "sla_first_response_breached", Kind: Bool},
	{Name: "sla_next_response_breached", Kind: Bool},
	{Name: "sla_resolution_breached", Kind: Bool},
	{Name: "updated_at", Kind: Instant},
}

// Columns implements Source.
func (s *Tickets) Columns() []Column { return TicketColumns }

// Params implements Source.
func (s *Tickets) Params() []string {
	return []string{"from", "to", "rolling", "time_zone", "agent_id", "team_id",
		"min_first_response_seconds", "min_resolution_seconds", "max_rating", "min_reopens", "sla_breached", "unresolved"}
}

// Rows implements Source: it pages through ListTicketKpis until a page comes without a token.
// A page may hold fewer tickets than asked for, or none, when the index walk hit its bound.
func (s *Tickets) Rows(ctx context.Context, q Query, emit func(row []Value) error) error {
	w := &ticketpulsev1.Window{TimeZone: q.TimeZone}
	if q.Rolling != "" {
		w.Kind = &ticketpulsev1.Window_Rolling{Rolling: q.Rolling}
	} else {
		w.Kind = &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{From: timestamppb.New(q.From), To: timestamppb.New(q.To)}}
	}
	f := q.Tickets
	req := &ticketpulsev1.ListTicketKpisRequest{Tenant: q.Tenant, AgentId: q.AgentID, TeamId: q.TeamID, Window: w,
		PageSize: grpcapi.MaxPageSize, Filter: &ticketpulsev1.TicketFilter{
			MinFirstResponseSeconds: f.MinFirstResponseSeconds, MinResolutionSeconds: f.MinResolutionSeconds,
			MaxRating: f.MaxRating, MinReopens: f.MinReopens, SlaBreached: f.SLABreached, Unresolved: f.Unresolved,
		}}
	loc, err := time.LoadLocation(q.TimeZone)
	if err != nil {
		return &Problem{"time_zone", err.Error()}
	}
	at := func(v *Value, ts *timestamppb.Timestamp) {
		v.Null = ts == nil
		if ts != nil {
			v.T = ts.AsTime().In(loc)
		}
	}
	row := make([]Value, len(TicketColumns))
	row[0].S = q.Tenant
	for {
		resp, err := s.lister.ListTicketKpis(ctx, req)
		if err != nil {
			return err
		}
		for _, t := range resp.GetTickets() {
			row[1].S, row[2].S, row[3].S = t.GetTicketId(), t.GetAgentId(), t.GetTeamId()
			row[4].S, row[5].S = t.GetStatus(), t.GetPriority()
			at(&row[6], t.GetCreatedAt())
			row[7].Null, row[7].F = t.FirstResponseSeconds == nil, t.GetFirstResponseSeconds()
			at(&row[8], t.GetFirstResponseAt())
			row[9].Null, row[9].F = t.ResolutionSeconds == nil, t.GetResolutionSeconds()
			at(&row[10], t.GetResolvedAt())
			row[11].I = int64(t.GetReopens())
			row[12].Null, row[12].I = t.Rating == nil, int64(t.GetRating())
			row[13].B, row[14].B, row[15].B = t.GetSlaFirstResponseBreached(), t.GetSlaNextResponseBreached(), t.GetSlaResolutionBreached()
			at(&row[16], t.GetUpdatedAt())
			if err := emit(row); err != nil {
				return err
			}
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return nil
		}
	}
}
