package grpcapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/ticketindex"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// TicketLister is what ListTicketKpis needs from the drill-down index.
type TicketLister interface {
	List(ctx context.Context, q ticketindex.Query) (ticketindex.Page, error)
}

var _ TicketLister = (*ticketindex.Reader)(nil)

// WithTickets makes the server answer ListTicketKpis from t.
func (s *Server) WithTickets(t TicketLister) *Server {
	s.tickets = t
	return s
}

// maxFilterSeconds bounds the duration filters (about 31,700 years): any larger one matches no
// ticket anyway, and a bound keeps the conversion to milliseconds exact.
const maxFilterSeconds = 1e12

// ticketToken is where the next page of ListTicketKpis starts: the index position reached (an
// hour and an escaped ticket id), the window resolved for the first page, and a fingerprint of
// the request's other parameters, as pageToken does for the agent listings.
type ticketToken struct {
	Version     int    `json:"v"`
	Hour        int64  `json:"h"`
	Ticket      string `json:"k,omitempty"`
	FromHour    int64  `json:"f"`
	ToHour      int64  `json:"t"`
	Aligned     bool   `json:"a,omitempty"`
	Note        string `json:"n,omitempty"`
	Fingerprint string `json:"p"`
}

const ticketTokenVersion = 1

func ticketFingerprint(req *ticketpulsev1.ListTicketKpisRequest) string {
	h := sha256.New()
	fb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req.GetFilter()) // a message always marshals
	wb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req.GetWindow())
	for _, part := range [][]byte{[]byte(req.GetTenant()), []byte(req.GetAgentId()), []byte(req.GetTeamId()), fb, wb} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

func decodeTicketToken(s, wantFingerprint string) (ticketToken, error) {
	var t ticketToken
	malformed := errors.New("malformed: not a token this service issued")
	if len(s) > maxTokenLen {
		return t, fmt.Errorf("longer than %d bytes: not a token this service issued", maxTokenLen)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil || t.Version != ticketTokenVersion {
		return t, malformed
	}
	if t.Fingerprint != wantFingerprint {
		return t, errors.New("was issued for a listing with other parameters (tenant, agent_id, team_id, window or filter)")
	}
	if t.FromHour >= t.ToHour || t.ToHour-t.FromHour > window.MaxHours || t.FromHour < window.MinHour ||
		t.ToHour > window.MaxHour || t.Hour < t.FromHour || t.Hour >= t.ToHour {
		return t, errors.New("malformed: bad position or window")
	}
	if _, err := idtoken.Unescape(t.Ticket); err != nil && t.Ticket != "" {
		return t, malformed
	}
	return t, nil
}

// ticketFilter checks a request's filter.
func ticketFilter(v *violations, f *ticketpulsev1.TicketFilter) ticketindex.Filter {
	var out ticketindex.Filter
	if f == nil {
		return out
	}
	millis := func(field string, sec *float64) *int64 {
		if sec == nil {
			return nil
		}
		if math.IsNaN(*sec) || *sec < 0 || *sec > maxFilterSeconds {
			v.Add("filter."+field, fmt.Sprintf("%v: want 0 to %g seconds", *sec, maxFilterSeconds))
			return nil
		}
		ms := int64(math.Ceil(*sec * 1000))
		return &ms
	}
	out.MinFirstResponseMillis = millis("min_first_response_seconds", f.MinFirstResponseSeconds)
	out.MinResolutionMillis = millis("min_resolution_seconds", f.MinResolutionSeconds)
	if f.MaxRating != nil {
		if r := f.GetMaxRating(); r < 1 || r > 5 {
			v.Add("filter.max_rating", fmt.Sprintf("%d: want 1 to 5", r))
		} else {
			n := int(r)
			out.MaxRating = &n
		}
	}
	if f.MinReopens != nil {
		if r := f.GetMinReopens(); r < 0 {
			v.Add("filter.min_reopens", fmt.Sprintf("%d: must not be negative", r))
		} else {
			n := int(r)
			out.MinReopens = &n
		}
	}
	out.SLABreached, out.Unresolved = f.GetSlaBreached(), f.GetUnresolved()
	return out
}

// ListTicketKpis lists the tickets behind a scope's figures in a window, newest figure first,
// filtered while the index is walked. One call examines at most ticketindex.MaxExamined index
// entries and ticketindex.MaxDays days: a page may then hold fewer tickets than asked for (none,
// even) and a next_page_token to go on from there.
func (s *Server) ListTicketKpis(ctx context.Context, req *ticketpulsev1.ListTicketKpisRequest) (*ticketpulsev1.ListTicketKpisResponse, error) {
	const rpc = "ListTicketKpis"
	if s.tickets == nil {
		return nil, status.Error(codes.FailedPrecondition, rpc+": kpi keeps no drill-down index: start it with -ticket-index (TICKETPULSE_TICKET_INDEX=true)")
	}
	var v violations
	v.Tenant(req.GetTenant())
	v.ID("agent_id", req.GetAgentId(), false)
	v.ID("team_id", req.GetTeamId(), false)
	if req.GetAgentId() != "" && req.GetTeamId() != "" {
		v.Add("team_id", "set at most one of agent_id and team_id")
	}
	rw := v.window(req.GetWindow(), s.now())
	filter := ticketFilter(&v, req.GetFilter())
	size := v.PageSize(req.GetPageSize(), DefaultPageSize, MaxPageSize)
	if err := v.Err(); err != nil {
		return nil, err
	}
	fp := ticketFingerprint(req)
	var from *ticketindex.Position
	if req.GetPageToken() != "" {
		tok, err := decodeTicketToken(req.GetPageToken(), fp)
		if err != nil {
			v.Add("page_token", err.Error())
			return nil, v.Err()
		}
		rw.FromHour, rw.ToHour, rw.AlignedToHour, rw.Note = tok.FromHour, tok.ToHour, tok.Aligned, tok.Note
		from = &ticketindex.Position{Hour: tok.Hour, Ticket: tok.Ticket}
	}
	scope := bucket.Scope{Kind: bucket.Tenant}
	switch {
	case req.GetAgentId() != "":
		scope = bucket.Scope{Kind: bucket.Agent, ID: req.GetAgentId()}
	case req.GetTeamId() != "":
		scope = bucket.Scope{Kind: bucket.Team, ID: req.GetTeamId()}
	}
	ks, err := s.keyspace(ctx, rpc, req.GetTenant())
	if err != nil {
		return nil, err
	}
	page, err := s.tickets.List(ctx, ticketindex.Query{
		Keyspace: ks, Scope: scope, FromHour: rw.FromHour, ToHour: rw.ToHour,
		Filter: filter, Limit: size, From: from,
	})
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, ticketindex.ErrCorrupt) || errors.Is(err, store.ErrCorrupt)) {
			s.log.Error("ticket index corrupt", "rpc", rpc, "tenant", req.GetTenant(), "err", err)
			return nil, status.Errorf(codes.Internal, "%s: %v", rpc, err)
		}
		return nil, s.readErr(ctx, rpc, req.GetTenant(), err)
	}
	resp := &ticketpulsev1.ListTicketKpisResponse{Window: rw.Proto(), Tickets: make([]*ticketpulsev1.TicketKpis, len(page.Rows))}
	for i := range page.Rows {
		resp.Tickets[i] = ticketProto(&page.Rows[i])
	}
	if page.Next != nil {
		resp.NextPageToken = encodeTicketToken(ticketToken{
			Hour: page.Next.Hour, Ticket: page.Next.Ticket, FromHour: rw.FromHour, ToHour: rw.ToHour,
			Aligned: rw.AlignedToHour, Note: rw.Note, Fingerprint: fp,
		})
	}
	return resp, nil
}

func encodeTicketToken(t ticketToken) string {
	t.Version = ticketTokenVersion
	b, _ := json.Marshal(t) // plain fields always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

func millisTime(ms int64) *timestamppb.Timestamp {
	return timestamppb.New(time.UnixMilli(ms).UTC())
}

// enumWord is an enum value's name as the JSON form writes it: "solved", "urgent".
func enumWord(name, prefix string) string {
	w := strings.ToLower(strings.TrimPrefix(name, prefix))
	if w == "unspecified" {
		return ""
	}
	return w
}

func ticketProto(r *ticketindex.Row) *ticketpulsev1.TicketKpis {
	t := &r.Ticket
	agent, team := ticketindex.Latest(t)
	out := &ticketpulsev1.TicketKpis{
		TicketId:                 r.ID,
		AgentId:                  agent,
		TeamId:                   team,
		Status:                   enumWord(t.Status.String(), "TICKET_STATUS_"),
		Priority:                 enumWord(t.Priority.String(), "PRIORITY_"),
		Reopens:                  int32(t.Reopens),
		SlaFirstResponseBreached: t.SLAFirstBreached,
		SlaNextResponseBreached:  t.SLANextBreached,
		SlaResolutionBreached:    t.SLAResolutionBreached,
		UpdatedAt:                millisTime(t.UpdatedMillis),
	}
	if t.CreatedMillis != 0 {
		out.CreatedAt = millisTime(t.CreatedMillis)
	}
	if t.FirstResponseMillis >= 0 {
		out.FirstResponseSeconds = proto.Float64(float64(t.FirstResponseMillis) / 1000)
		out.FirstResponseAt = millisTime(t.FirstResponseAt)
	}
	if t.ResolvedAt != 0 {
		out.ResolvedAt = millisTime(t.ResolvedAt)
	}
	if t.ResolutionMillis >= 0 {
		out.ResolutionSeconds = proto.Float64(float64(t.ResolutionMillis) / 1000)
	}
	if t.Rating != 0 {
		out.Rating = proto.Int32(int32(t.Rating))
	}
	return out
}
