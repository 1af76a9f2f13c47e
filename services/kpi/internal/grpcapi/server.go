// Package grpcapi serves ticketpulse.v1.KpiService: KPIs of an agent, a team, a queue, the
// unassigned figures, and ordered, paginated listings of agents, teams and queues, all merged from
// the hourly buckets.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/grpcerr"
)

// Reader is what the server needs from the store.
type Reader interface {
	Totals(ctx context.Context, tenant string, scopes []bucket.Scope, fromHour, toHour int64) ([]*bucket.Totals, error)
	Agents(ctx context.Context, tenant, team string, fromHour, toHour int64) ([]string, error)
	Teams(ctx context.Context, tenant string, fromHour, toHour int64) ([]string, error)
	Queues(ctx context.Context, tenant string, fromHour, toHour int64) ([]string, error)
	Read(ctx context.Context, tenant string, qs []query.Query) ([]*bucket.Totals, error)
}

var _ Reader = (*query.Reader)(nil)

// Limits of the API.
const (
	MaxIDBytes      = grpcerr.MaxIDBytes
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Keyspaces resolves the key generation a tenant's figures are read from (package generation).
type Keyspaces interface {
	Current(ctx context.Context, tenant string) (string, error)
}

// Server implements ticketpulsev1.KpiServiceServer.
type Server struct {
	ticketpulsev1.UnimplementedKpiServiceServer
	r      Reader
	spaces Keyspaces
	// tickets serves ListTicketKpis (tickets.go); nil answers Unimplemented.
	tickets TicketLister
	now     func() time.Time
	log     *slog.Logger
}

var _ ticketpulsev1.KpiServiceServer = (*Server)(nil)

// NewServer returns a server reading through r; now tells the time rolling windows end at.
func NewServer(r Reader, now func() time.Time, log *slog.Logger) *Server {
	return &Server{r: r, now: now, log: log}
}

// WithKeyspaces makes every request read the generation k names current when the request
// starts; without it the tenant's keys are read (generation 0). One request reads one generation
// throughout, even when a rebuild switches meanwhile.
func (s *Server) WithKeyspaces(k Keyspaces) *Server {
	s.spaces = k
	return s
}

// keyspace resolves the generation a request reads.
func (s *Server) keyspace(ctx context.Context, rpc, tenant string) (string, error) {
	if s.spaces == nil {
		return tenant, nil
	}
	ks, err := s.spaces.Current(ctx, tenant)
	if err != nil {
		return "", s.readErr(ctx, rpc, tenant, err)
	}
	return ks, nil
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { ticketpulsev1.RegisterKpiServiceServer(g, s) }

// violations collects what is wrong with a request, so one answer names every bad field.
type violations struct{ grpcerr.Violations }

func (v *violations) window(w *ticketpulsev1.Window, now time.Time) window.Resolved {
	r, err := window.Resolve(w, now)
	var fe *window.FieldError
	switch {
	case errors.As(err, &fe):
		v.Add(fe.Field, fe.Reason)
	case err != nil:
		v.Add("window", err.Error())
	}
	return r
}

// readErr maps a store failure to a status: the caller's own cancellation stays that, corrupt
// data is Internal, anything else (Redis unreachable, timing out, refusing) is Unavailable,
// which clients may retry.
func (s *Server) readErr(ctx context.Context, rpc, tenant string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	if errors.Is(err, query.ErrCorrupt) {
		s.log.Error("kpi data corrupt", "rpc", rpc, "tenant", tenant, "err", err)
		return status.Errorf(codes.Internal, "%s: %v", rpc, err)
	}
	s.log.Warn("kpi read failed", "rpc", rpc, "tenant", tenant, "err", err)
	return status.Errorf(codes.Unavailable, "%s: kpi store: %v", rpc, err)
}

// one reads the KPIs of a single scope.
func (s *Server) one(ctx context.Context, rpc, tenant string, scope bucket.Scope, rw window.Resolved) (*ticketpulsev1.Kpis, error) {
	ks, err := s.keyspace(ctx, rpc, tenant)
	if err != nil {
		return nil, err
	}
	ts, err := s.r.Totals(ctx, ks, []bucket.Scope{scope}, rw.FromHour, rw.ToHour)
	if err != nil {
		return nil, s.readErr(ctx, rpc, tenant, err)
	}
	return query.ToProto(ts[0]), nil
}

// GetAgentKpis returns one agent's KPIs; an agent without figures gets zeros.
func (s *Server) GetAgentKpis(ctx context.Context, req *ticketpulsev1.GetAgentKpisRequest) (*ticketpulsev1.GetAgentKpisResponse, error) {
	var v violations
	v.Tenant(req.GetTenant())
	v.ID("agent_id", req.GetAgentId(), true)
	rw := v.window(req.GetWindow(), s.now())
	if err := v.Err(); err != nil {
		return nil, err
	}
	k, err := s.one(ctx, "GetAgentKpis", req.GetTenant(), bucket.Scope{Kind: bucket.Agent, ID: req.GetAgentId()}, rw)
	if err != nil {
		return nil, err
	}
	return &ticketpulsev1.GetAgentKpisResponse{
		Agent:  &ticketpulsev1.AgentKpis{AgentId: req.GetAgentId(), Kpis: k},
		Window: rw.Proto(),
	}, nil
}

// GetTeamKpis returns one team's KPIs; a team without figures gets zeros.
func (s *Server) GetTeamKpis(ctx context.Context, req *ticketpulsev1.GetTeamKpisRequest) (*ticketpulsev1.GetTeamKpisResponse, error) {
	var v violations
	v.Tenant(req.GetTenant())
	v.ID("team_id", req.GetTeamId(), true)
	rw := v.window(req.GetWindow(), s.now())
	if err := v.Err(); err != nil {
		return nil, err
	}
	k, err := s.one(ctx, "GetTeamKpis", req.GetTenant(), bucket.Scope{Kind: bucket.Team, ID: req.GetTeamId()}, rw)
	if err != nil {
		return nil, err
	}
	return &ticketpulsev1.GetTeamKpisResponse{TeamId: req.GetTeamId(), Kpis: k, Window: rw.Proto()}, nil
}

// GetQueueKpis returns one queue's call KPIs; a queue without figures gets zeros.
func (s *Server) GetQueueKpis(ctx context.Context, req *ticketpulsev1.GetQueueKpisRequest) (*ticketpulsev1.GetQueueKpisResponse, error) {
	var v violations
	v.Tenant(req.GetTenant())
	v.ID("queue_id", req.GetQueueId(), true)
	rw := v.window(req.GetWindow(), s.now())
	if err := v.Err(); err != nil {
		return nil, err
	}
	k, err := s.one(ctx, "GetQueueKpis", req.GetTenant(), bucket.Scope{Kind: bucket.Queue, ID: req.GetQueueId()}, rw)
	if err != nil {
		return nil, err
	}
	return &ticketpulsev1.GetQueueKpisResponse{QueueId: req.GetQueueId(), Kpis: k, Window: rw.Proto()}, nil
}

// GetUnassignedKpis returns the figures credited while tickets had no assignee.
func (s *Server) GetUnassignedKpis(ctx context.Context, req *ticketpulsev1.GetUnassignedKpisRequest) (*ticketpulsev1.GetUnassignedKpisResponse, error) {
	var v violations
	v.Tenant(req.GetTenant())
	rw := v.window(req.GetWindow(), s.now())
	if err := v.Err(); err != nil {
		return nil, err
	}
	k, err := s.one(ctx, "GetUnassignedKpis", req.GetTenant(), bucket.Scope{Kind: bucket.Unassigned}, rw)
	if err != nil {
		return nil, err
	}
	return &ticketpulsev1.GetUnassignedKpisResponse{Kpis: k, Window: rw.Proto()}, nil
}

// ListAgentKpis lists the agents active in the window, ordered and paginated. Ordering by
// agent_id reads only the page's agents; any other order reads every agent's totals in one
// pipelined round trip and computes only the ordered figure for all of them.
func (s *Server) ListAgentKpis(ctx context.Context, req *ticketpulsev1.ListAgentKpisRequest) (*ticketpulsev1.ListAgentKpisResponse, error) {
	var v violations
	v.ID("team_id", req.GetTeamId(), false)
	l, err := s.list(ctx, &v, listing{
		rpc: "ListAgentKpis", kind: bucket.Agent, tenant: req.GetTenant(), team: req.GetTeamId(),
		window: req.GetWindow(), orderBy: req.GetOrderBy(), pageSize: req.GetPageSize(), pageToken: req.GetPageToken(),
		ids: func(ctx context.Context, ks string, from, to int64) ([]string, error) {
			return s.r.Agents(ctx, ks, req.GetTeamId(), from, to)
		},
	})
	if err != nil {
		return nil, err
	}
	resp := &ticketpulsev1.ListAgentKpisResponse{Agents: make([]*ticketpulsev1.AgentKpis, len(l.ids)),
		NextPageToken: l.next, Window: l.window, TotalSize: l.total}
	for i, id := range l.ids {
		resp.Agents[i] = &ticketpulsev1.AgentKpis{AgentId: id, Kpis: query.ToProto(l.totals[i])}
	}
	return resp, nil
}

// ListTeamKpis lists the teams active in the window, ordered and paginated like ListAgentKpis.
func (s *Server) ListTeamKpis(ctx context.Context, req *ticketpulsev1.ListTeamKpisRequest) (*ticketpulsev1.ListTeamKpisResponse, error) {
	var v violations
	l, err := s.list(ctx, &v, listing{
		rpc: "ListTeamKpis", kind: bucket.Team, tenant: req.GetTenant(),
		window: req.GetWindow(), orderBy: req.GetOrderBy(), pageSize: req.GetPageSize(), pageToken: req.GetPageToken(),
		ids: func(ctx context.Context, ks string, from, to int64) ([]string, error) {
			return s.r.Teams(ctx, ks, from, to)
		},
	})
	if err != nil {
		return nil, err
	}
	resp := &ticketpulsev1.ListTeamKpisResponse{Teams: make([]*ticketpulsev1.TeamKpis, len(l.ids)),
		NextPageToken: l.next, Window: l.window, TotalSize: l.total}
	for i, id := range l.ids {
		resp.Teams[i] = &ticketpulsev1.TeamKpis{TeamId: id, Kpis: query.ToProto(l.totals[i])}
	}
	return resp, nil
}

// ListQueueKpis lists the queues with calls in the window, ordered and paginated like ListTeamKpis.
func (s *Server) ListQueueKpis(ctx context.Context, req *ticketpulsev1.ListQueueKpisRequest) (*ticketpulsev1.ListQueueKpisResponse, error) {
	var v violations
	l, err := s.list(ctx, &v, listing{
		rpc: "ListQueueKpis", kind: bucket.Queue, tenant: req.GetTenant(),
		window: req.GetWindow(), orderBy: req.GetOrderBy(), pageSize: req.GetPageSize(), pageToken: req.GetPageToken(),
		ids: func(ctx context.Context, ks string, from, to int64) ([]string, error) {
			return s.r.Queues(ctx, ks, from, to)
		},
	})
	if err != nil {
		return nil, err
	}
	resp := &ticketpulsev1.ListQueueKpisResponse{Queues: make([]*ticketpulsev1.QueueKpis, len(l.ids)),
		NextPageToken: l.next, Window: l.window, TotalSize: l.total}
	for i, id := range l.ids {
		resp.Queues[i] = &ticketpulsev1.QueueKpis{QueueId: id, Kpis: query.ToProto(l.totals[i])}
	}
	return resp, nil
}

// listing is one listing request, of agents, teams or queues.
type listing struct {
	rpc       string
	kind      bucket.Kind
	tenant    string
	team      string // agents of one team; empty for all
	window    *ticketpulsev1.Window
	orderBy   string
	pageSize  int32
	pageToken string
	ids       func(ctx context.Context, keyspace string, fromHour, toHour int64) ([]string, error)
}

// listed is one page of a listing.
type listed struct {
	ids    []string
	totals []*bucket.Totals
	next   string
	window *ticketpulsev1.ResolvedWindow
	total  int32
}

// list validates a listing (adding to v what the caller already found wrong), reads the ids active
// in the window and returns the requested page in order.
func (s *Server) list(ctx context.Context, v *violations, l listing) (listed, error) {
	v.Tenant(l.tenant)
	rw := v.window(l.window, s.now())
	idName := "agent_id"
	switch l.kind {
	case bucket.Team:
		idName = "team_id"
	case bucket.Queue:
		idName = "queue_id"
	}
	ord, ok := parseOrder(l.orderBy, idName)
	if !ok {
		v.Add("order_by", fmt.Sprintf("%q: want a name optionally followed by \" desc\"; names: %s", l.orderBy, strings.Join(orderNames(idName), ", ")))
	}
	size := int(l.pageSize)
	switch {
	case size < 0:
		v.Add("page_size", "must not be negative")
	case size > MaxPageSize:
		v.Add("page_size", fmt.Sprintf("%d, at most %d allowed", size, MaxPageSize))
	case size == 0:
		size = DefaultPageSize
	}
	if err := v.Err(); err != nil {
		return listed{}, err
	}
	fp := fingerprint(l.tenant, string(l.kind)+":"+l.team, ord, l.window)
	offset := 0
	if l.pageToken != "" {
		tok, err := decodeToken(l.pageToken, fp)
		if err != nil {
			v.Add("page_token", err.Error())
			return listed{}, v.Err()
		}
		offset = tok.Offset
		rw.FromHour, rw.ToHour, rw.AlignedToHour, rw.Note = tok.FromHour, tok.ToHour, tok.Aligned, tok.Note
	}
	ks, err := s.keyspace(ctx, l.rpc, l.tenant)
	if err != nil {
		return listed{}, err
	}
	ids, err := l.ids(ctx, ks, rw.FromHour, rw.ToHour)
	if err != nil {
		return listed{}, s.readErr(ctx, l.rpc, l.tenant, err)
	}
	page, totals, err := s.orderedPage(ctx, ks, l.kind, ids, ord, rw, offset, size)
	if err != nil {
		return listed{}, s.readErr(ctx, l.rpc, l.tenant, err)
	}
	out := listed{ids: page, totals: totals, window: rw.Proto(), total: int32(len(ids))}
	if next := offset + len(page); next < len(ids) {
		out.next = encodeToken(pageToken{
			Offset: next, FromHour: rw.FromHour, ToHour: rw.ToHour, Aligned: rw.AlignedToHour, Note: rw.Note, Fingerprint: fp,
		})
	}
	return out, nil
}

// orderedPage returns the ids (agents, teams or queues) of one page in order, with their totals.
func (s *Server) orderedPage(ctx context.Context, tenant string, kind bucket.Kind, agents []string, ord order, rw window.Resolved, offset, size int) ([]string, []*bucket.Totals, error) {
	if offset >= len(agents) {
		return nil, nil, nil
	}
	end := min(offset+size, len(agents))
	if ord.key == nil { // agent_id: agents are already sorted
		if ord.desc {
			agents = slices.Clone(agents)
			slices.Reverse(agents)
		}
		page := agents[offset:end]
		ts, err := s.r.Totals(ctx, tenant, scopesOf(kind, page), rw.FromHour, rw.ToHour)
		return page, ts, err
	}
	ts, err := s.r.Totals(ctx, tenant, scopesOf(kind, agents), rw.FromHour, rw.ToHour)
	if err != nil {
		return nil, nil, err
	}
	type row struct {
		agent string
		key   float64
		t     *bucket.Totals
	}
	rows := make([]row, len(agents))
	for i, a := range agents {
		rows[i] = row{agent: a, key: ord.key(ts[i]), t: ts[i]}
	}
	// Stable over the sorted agents, so ties stay in agent_id order whatever the direction.
	slices.SortStableFunc(rows, func(a, b row) int {
		switch {
		case a.key == b.key:
			return 0
		case (a.key < b.key) != ord.desc:
			return -1
		default:
			return 1
		}
	})
	page := make([]string, 0, end-offset)
	totals := make([]*bucket.Totals, 0, end-offset)
	for _, r := range rows[offset:end] {
		page = append(page, r.agent)
		totals = append(totals, r.t)
	}
	return page, totals, nil
}

func scopesOf(kind bucket.Kind, ids []string) []bucket.Scope {
	scopes := make([]bucket.Scope, len(ids))
	for i, id := range ids {
		scopes[i] = bucket.Scope{Kind: kind, ID: id}
	}
	return scopes
}
