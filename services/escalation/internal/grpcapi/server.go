// Package grpcapi serves ticketpulse.v1.EscalationService: listing and reading escalations with
// their timelines, acknowledging and resolving them by hand, watching their changes live, and
// the what-if (the rules in force, and a simulation of edited ones on past events).
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/engine"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/grpcerr"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
)

// Page sizes of ListEscalations.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
	// MaxTextBytes bounds the note of an acknowledgement or resolution.
	MaxTextBytes = 2048
	// DefaultWatchesPerTenant is how many WatchEscalations streams one tenant may hold open on
	// one replica unless Options says otherwise.
	DefaultWatchesPerTenant = 16
)

// Options bound what one server takes on.
type Options struct {
	// WatchesPerTenant caps a tenant's open WatchEscalations streams; 0 means
	// DefaultWatchesPerTenant.
	WatchesPerTenant int
	// WhatIf serves GetRules and SimulateRules.
	WhatIf WhatIf
}

// Changer changes escalations by hand and publishes the change.
type Changer interface {
	Acknowledge(ctx context.Context, tenant, id, by, note string) (*escalationstore.Record, error)
	Resolve(ctx context.Context, tenant, id, by, note string) (*escalationstore.Record, error)
}

// Reader reads escalations.
type Reader interface {
	Get(ctx context.Context, tenant, id string) (*escalationstore.Record, error)
	List(ctx context.Context, tenant string, f escalationstore.Filter, size int, pageToken string) ([]*escalationstore.Record, string, error)
}

var (
	_ Changer = (*engine.Engine)(nil)
	_ Reader  = (*escalationstore.Store)(nil)
)

// Server implements tpv1.EscalationServiceServer.
type Server struct {
	tpv1.UnimplementedEscalationServiceServer
	r   Reader
	c   Changer
	js  jetstream.JetStream
	log *slog.Logger
	// watches holds each tenant's open WatchEscalations streams.
	watches *watchSlots
	whatIf  WhatIf
	// simulations holds a token per running simulation.
	simulations chan struct{}
}

var _ tpv1.EscalationServiceServer = (*Server)(nil)

// NewServer returns a server; js is where WatchEscalations reads the ESCALATIONS stream.
func NewServer(r Reader, c Changer, js jetstream.JetStream, o Options, log *slog.Logger) *Server {
	if o.WatchesPerTenant <= 0 {
		o.WatchesPerTenant = DefaultWatchesPerTenant
	}
	o.WhatIf.defaults()
	return &Server{r: r, c: c, js: js, log: log, watches: newWatchSlots(o.WatchesPerTenant),
		whatIf: o.WhatIf, simulations: make(chan struct{}, o.WhatIf.Simulations)}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { tpv1.RegisterEscalationServiceServer(g, s) }

// ListEscalations lists a tenant's escalations, newest first.
func (s *Server) ListEscalations(ctx context.Context, req *tpv1.ListEscalationsRequest) (*tpv1.ListEscalationsResponse, error) {
	var v grpcerr.Violations
	v.Tenant(req.GetTenant())
	v.ID("team_id", req.GetTeamId(), false)
	v.ID("agent_id", req.GetAgentId(), false)
	v.ID("ticket_id", req.GetTicketId(), false)
	v.ID("queue_id", req.GetQueueId(), false)
	if r := req.GetRule(); r != "" && !idtoken.ValidTenant(r) {
		v.Add("rule", fmt.Sprintf("%q is not a rule name: [a-z0-9][a-z0-9_-]{0,62}", r))
	}
	if _, ok := tpv1.EscalationState_name[int32(req.GetState())]; !ok {
		v.Add("state", fmt.Sprintf("unknown state %d", req.GetState()))
	}
	if _, ok := tpv1.Severity_name[int32(req.GetSeverity())]; !ok {
		v.Add("severity", fmt.Sprintf("unknown severity %d", req.GetSeverity()))
	}
	f := escalationstore.Filter{State: req.GetState(), Rule: req.GetRule(), Team: req.GetTeamId(), Agent: req.GetAgentId(), Ticket: req.GetTicketId(),
		Queue: req.GetQueueId(), Severity: req.GetSeverity()}
	f.From, f.To = v.Range("triggered", req.GetTriggered())
	size := v.PageSize(req.GetPageSize(), DefaultPageSize, MaxPageSize)
	if err := v.Err(); err != nil {
		return nil, err
	}
	recs, next, err := s.r.List(ctx, req.GetTenant(), f, size, req.GetPageToken())
	if errors.Is(err, escalationstore.ErrBadPageToken) {
		v.Add("page_token", "not a token this service handed out")
		return nil, v.Err()
	}
	if err != nil {
		return nil, s.storeErr(ctx, "ListEscalations", req.GetTenant(), err)
	}
	resp := &tpv1.ListEscalationsResponse{NextPageToken: next}
	for _, r := range recs {
		resp.Escalations = append(resp.Escalations, r.Proto(false))
	}
	return resp, nil
}

// GetEscalation returns one escalation with its timeline.
func (s *Server) GetEscalation(ctx context.Context, req *tpv1.GetEscalationRequest) (*tpv1.GetEscalationResponse, error) {
	if err := checkID(req.GetTenant(), req.GetId()); err != nil {
		return nil, err
	}
	r, err := s.r.Get(ctx, req.GetTenant(), req.GetId())
	if err != nil {
		return nil, s.storeErr(ctx, "GetEscalation", req.GetTenant(), err)
	}
	return &tpv1.GetEscalationResponse{Escalation: r.Proto(true)}, nil
}

// AcknowledgeEscalation acknowledges an open escalation, in the name of the authenticated caller.
func (s *Server) AcknowledgeEscalation(ctx context.Context, req *tpv1.AcknowledgeEscalationRequest) (*tpv1.AcknowledgeEscalationResponse, error) {
	by, err := s.caller(ctx, "AcknowledgeEscalation")
	if err != nil {
		return nil, err
	}
	if err := checkChange(req.GetTenant(), req.GetId(), req.GetNote()); err != nil {
		return nil, err
	}
	r, err := s.c.Acknowledge(ctx, req.GetTenant(), req.GetId(), by, req.GetNote())
	if err != nil {
		return nil, s.storeErr(ctx, "AcknowledgeEscalation", req.GetTenant(), err)
	}
	return &tpv1.AcknowledgeEscalationResponse{Escalation: r.Proto(true)}, nil
}

// ResolveEscalation resolves an escalation by hand, in the name of the authenticated caller.
func (s *Server) ResolveEscalation(ctx context.Context, req *tpv1.ResolveEscalationRequest) (*tpv1.ResolveEscalationResponse, error) {
	by, err := s.caller(ctx, "ResolveEscalation")
	if err != nil {
		return nil, err
	}
	if err := checkChange(req.GetTenant(), req.GetId(), req.GetNote()); err != nil {
		return nil, err
	}
	r, err := s.c.Resolve(ctx, req.GetTenant(), req.GetId(), by, req.GetNote())
	if err != nil {
		return nil, s.storeErr(ctx, "ResolveEscalation", req.GetTenant(), err)
	}
	return &tpv1.ResolveEscalationResponse{Escalation: r.Proto(true)}, nil
}

// noCaller is the message of a change that reached the server without an authenticated caller.
const noCaller = "no authenticated caller to record as by"

// caller is who a change is recorded as done by: the principal the gate authenticated, never a
// name the request carries, so nobody acknowledges or resolves in someone else's name. Behind
// the gate a principal is always there; without one the change is refused rather than recorded
// anonymously.
func (s *Server) caller(ctx context.Context, rpc string) (string, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		s.log.ErrorContext(ctx, "a change reached the server without an authenticated caller", "rpc", rpc)
		return "", status.Errorf(codes.Internal, "%s: %s", rpc, noCaller)
	}
	return p.ID(), nil
}

func checkID(tenant, id string) error {
	var v grpcerr.Violations
	v.Tenant(tenant)
	if id == "" {
		v.Add("id", "required")
	} else if _, _, _, err := escalationstore.ParseID(id); err != nil {
		v.Add("id", err.Error())
	}
	return v.Err()
}

func checkChange(tenant, id, note string) error {
	if err := checkID(tenant, id); err != nil {
		return err
	}
	var v grpcerr.Violations
	if len(note) > MaxTextBytes {
		v.Add("note", fmt.Sprintf("%d bytes, at most %d allowed", len(note), MaxTextBytes))
	}
	return v.Err()
}

// storeErr maps a store failure to a status.
func (s *Server) storeErr(ctx context.Context, rpc, tenant string, err error) error {
	switch {
	case errors.Is(err, escalationstore.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: %v", rpc, err)
	case errors.Is(err, escalationstore.ErrResolved), errors.Is(err, escalationstore.ErrAcknowledged):
		return status.Errorf(codes.FailedPrecondition, "%s: %v", rpc, err)
	case errors.Is(err, escalationstore.ErrBadID):
		return status.Errorf(codes.InvalidArgument, "%s: id: %v", rpc, err)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	s.log.Warn("escalation store failed", "rpc", rpc, "tenant", tenant, "err", err)
	return status.Errorf(codes.Unavailable, "%s: escalation store: %v", rpc, err)
}

// WatchEscalations streams the tenant's changes from now on, read from the ESCALATIONS stream
// with an ordered consumer (no state on the server, nothing to clean up).
func (s *Server) WatchEscalations(req *tpv1.WatchEscalationsRequest, srv grpc.ServerStreamingServer[tpv1.WatchEscalationsResponse]) error {
	var v grpcerr.Violations
	v.Tenant(req.GetTenant())
	if r := req.GetRule(); r != "" && !idtoken.ValidTenant(r) {
		v.Add("rule", fmt.Sprintf("%q is not a rule name: [a-z0-9][a-z0-9_-]{0,62}", r))
	}
	if err := v.Err(); err != nil {
		return err
	}
	if !s.watches.take(req.GetTenant()) {
		return status.Errorf(codes.ResourceExhausted, "WatchEscalations: tenant %s has %d watches open on this replica, the most allowed; close one or retry later",
			req.GetTenant(), s.watches.max)
	}
	defer s.watches.give(req.GetTenant())
	ctx := srv.Context()
	subject := stream.TenantEscalationsFilter(req.GetTenant())
	if req.GetRule() != "" {
		subject = stream.EscalationSubject(req.GetTenant(), req.GetRule())
	}
	st, err := s.js.Stream(ctx, stream.EscalationsName)
	if err != nil {
		return status.Errorf(codes.Unavailable, "WatchEscalations: %v", err)
	}
	// "From now on" is pinned to the sequence after the stream's last message rather than left
	// to DeliverNew: the client re-creates an ordered consumer whose server went away with its
	// first settings until it delivered something, and DeliverNew would then skip what was
	// stored in between.
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: st.CachedInfo().State.LastSeq + 1,
	})
	if err != nil {
		return status.Errorf(codes.Unavailable, "WatchEscalations: %v", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return status.Errorf(codes.Unavailable, "WatchEscalations: %v", err)
	}
	defer it.Stop()
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	// Headers go out at once, so a client knows the watch is established before any change.
	if err := srv.SendHeader(nil); err != nil {
		return err
	}
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return status.Errorf(codes.Unavailable, "WatchEscalations: %v", err)
		}
		c, err := engine.ChangeFromMsg(msg.Data())
		if err != nil {
			s.log.Error("undecodable escalation change", "subject", msg.Subject(), "err", err)
			continue
		}
		if err := srv.Send(&tpv1.WatchEscalationsResponse{Change: c}); err != nil {
			return err
		}
	}
}
