package grpcapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/whatif"
	"github.com/ticketpulse/ticketpulse/services/platform/grpcerr"
)

// Bounds of SimulateRules.
const (
	// MaxRulesYAML bounds an edited copy of the rules.
	MaxRulesYAML = 1 << 20
	// MaxSimulatedRange is the longest range replayed.
	MaxSimulatedRange = 31 * 24 * time.Hour
	// DefaultSimulations is how many simulations one replica runs at once.
	DefaultSimulations = 2
	// DefaultSimulateTimeout bounds one simulation.
	DefaultSimulateTimeout = 2 * time.Minute
	// DefaultSimulateEvents is how many of the tenant's messages one simulation reads at most.
	DefaultSimulateEvents = 1_000_000
	// MaxSimulatedEscalations caps a response's escalations (SimulateRulesResponse.truncated).
	MaxSimulatedEscalations = 10_000
)

// NotSimulatedHeader is the response header naming the rules a simulation did not judge, with
// why.
const NotSimulatedHeader = "ticketpulse-not-simulated"

// Rules is the rules file in force (a reload swaps it).
type Rules interface {
	Load() *rulesfile.Config
}

// WhatIf is what GetRules and SimulateRules need; the zero value refuses both as unavailable.
type WhatIf struct {
	Rules Rules
	Store whatif.Store
	// Horizon is the service's -history-horizon.
	Horizon time.Duration
	// Simulations, Timeout and MaxEvents bound SimulateRules; zero takes the defaults.
	Simulations int
	Timeout     time.Duration
	MaxEvents   int
	// Now is the clock; a simulation never runs past it.
	Now func() time.Time
	// Holding, when set, is called by each simulation once it holds its slot (tests hold it).
	Holding func(ctx context.Context)
}

func (w *WhatIf) defaults() {
	if w.Simulations <= 0 {
		w.Simulations = DefaultSimulations
	}
	if w.Timeout <= 0 {
		w.Timeout = DefaultSimulateTimeout
	}
	if w.MaxEvents <= 0 {
		w.MaxEvents = DefaultSimulateEvents
	}
	if w.Now == nil {
		w.Now = time.Now
	}
}

// Version is the version of a tenant's rules: a hash of their YAML.
func Version(yaml []byte) string {
	sum := sha256.Sum256(yaml)
	return hex.EncodeToString(sum[:12])
}

// GetRules returns the tenant's part of the loaded rules file.
func (s *Server) GetRules(ctx context.Context, req *tpv1.GetRulesRequest) (*tpv1.GetRulesResponse, error) {
	var v grpcerr.Violations
	v.Tenant(req.GetTenant())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if s.whatIf.Rules == nil {
		return nil, status.Error(codes.Unavailable, "GetRules: no rules source")
	}
	cfg := s.whatIf.Rules.Load()
	data := cfg.TenantYAML(req.GetTenant())
	resp := &tpv1.GetRulesResponse{RulesYaml: string(data), Version: Version(data)}
	if !cfg.LoadedAt.IsZero() {
		resp.LoadedAt = timestamppb.New(cfg.LoadedAt)
	}
	return resp, nil
}

// SimulateRules replays a range of the tenant's events through the judge with the loaded rules
// or an edited copy, and compares what would have fired with what did.
func (s *Server) SimulateRules(ctx context.Context, req *tpv1.SimulateRulesRequest) (*tpv1.SimulateRulesResponse, error) {
	tenant, rules, version, from, to, err := s.checkSimulate(req)
	if err != nil {
		return nil, err
	}
	if s.whatIf.Store == nil {
		return nil, status.Error(codes.Unavailable, "SimulateRules: no escalation store")
	}
	select {
	case s.simulations <- struct{}{}:
	default:
		return nil, status.Errorf(codes.ResourceExhausted, "SimulateRules: %d simulations are running on this replica, the most allowed; retry later",
			s.whatIf.Simulations)
	}
	defer func() { <-s.simulations }()
	call := ctx
	ctx, cancel := context.WithTimeout(ctx, s.whatIf.Timeout)
	defer cancel()
	if s.whatIf.Holding != nil {
		s.whatIf.Holding(ctx)
	}
	// Not past now: a deadline after it has not come for real either.
	to = minTime(to, s.whatIf.Now())
	if !from.Before(to) {
		return &tpv1.SimulateRulesResponse{RulesVersion: version}, nil
	}
	rep, err := whatif.Replay(ctx, s.js, s.whatIf.Store, tenant, whatif.Run{
		Tenant: rules, From: from, To: to, Horizon: s.whatIf.Horizon, Max: MaxSimulatedEscalations,
	}, s.whatIf.MaxEvents)
	switch {
	case errors.Is(err, whatif.ErrTooManyEvents), errors.Is(err, whatif.ErrTooManyReal):
		return nil, status.Errorf(codes.ResourceExhausted, "SimulateRules: %v; simulate a shorter range", err)
	case err != nil && call.Err() != nil:
		// The caller gave up or its own deadline passed.
		return nil, status.FromContextError(call.Err()).Err()
	case err != nil && ctx.Err() != nil:
		return nil, status.Errorf(codes.DeadlineExceeded, "SimulateRules: not done within %s (-simulate-timeout); simulate a shorter range", s.whatIf.Timeout)
	case err != nil:
		s.log.Warn("simulation failed", "tenant", tenant, "err", err)
		return nil, status.Errorf(codes.Unavailable, "SimulateRules: %v", err)
	}
	if len(rep.NotSimulated) > 0 {
		note := "kpi rules " + strings.Join(rep.NotSimulated, ", ") +
			": judged on KPI snapshots, and the KPI stream keeps only each agent's and team's latest one, so they are neither simulated nor compared"
		if err := grpc.SetHeader(ctx, metadata.Pairs(NotSimulatedHeader, note)); err != nil {
			s.log.Debug("set header", "err", err)
		}
	}
	resp := &tpv1.SimulateRulesResponse{
		EventsReplayed: rep.Events, RulesVersion: version, Truncated: rep.Truncated,
		Added: int32(rep.Added), Removed: int32(rep.Removed), Same: int32(rep.Same),
	}
	for _, d := range rep.Diffs {
		e := &tpv1.SimulatedEscalation{
			Rule: d.Rule, SubjectKind: d.SubjectKind, SubjectId: d.SubjectID, Level: d.Level, Severity: d.Severity,
			At: timestamppb.New(d.At), Summary: d.Summary, Difference: d.Difference, EscalationId: d.EscalationID,
		}
		for _, f := range d.Facts {
			e.Facts = append(e.Facts, &tpv1.Fact{Name: f.Name, Value: f.Value})
		}
		resp.Escalations = append(resp.Escalations, e)
	}
	return resp, nil
}

// checkSimulate validates a request: every bad field named at once, the edited rules loaded by
// the rules file's own strict loader.
func (s *Server) checkSimulate(req *tpv1.SimulateRulesRequest) (tenant string, rules *rulesfile.Tenant, version string, from, to time.Time, err error) {
	var v grpcerr.Violations
	tenant = req.GetTenant()
	v.Tenant(tenant)
	switch r := req.GetRange(); {
	case r == nil || r.GetFrom() == nil || r.GetTo() == nil:
		v.Add("range", "from and to are required")
	default:
		from, to = v.Range("range", r)
		if from.Before(to) && to.Sub(from) > MaxSimulatedRange {
			v.Add("range", fmt.Sprintf("%s long, at most %s (31 days) allowed", to.Sub(from), MaxSimulatedRange))
		}
	}
	data := []byte(req.GetRulesYaml())
	switch {
	case len(data) > MaxRulesYAML:
		v.Add("rules_yaml", fmt.Sprintf("%d bytes, at most %d allowed", len(data), MaxRulesYAML))
	case len(data) > 0:
		cfg, perr := rulesfile.Parse("rules_yaml", data)
		if perr != nil {
			v.Add("rules_yaml", perr.Error())
			break
		}
		if _, ok := cfg.Tenant(tenant); !ok || len(cfg.Tenants) != 1 {
			v.Add("rules_yaml", fmt.Sprintf("must hold exactly the tenant %q, holds %s", tenant, tenantList(cfg)))
			break
		}
		rules, _ = cfg.Tenant(tenant)
		version = Version(cfg.TenantYAML(tenant))
	}
	if err := v.Err(); err != nil {
		return "", nil, "", time.Time{}, time.Time{}, err
	}
	if rules == nil {
		if s.whatIf.Rules == nil {
			return "", nil, "", time.Time{}, time.Time{}, status.Error(codes.Unavailable, "SimulateRules: no rules source")
		}
		cfg := s.whatIf.Rules.Load()
		data := cfg.TenantYAML(tenant)
		version = Version(data)
		if rules, _ = cfg.Tenant(tenant); rules == nil {
			rules = &rulesfile.Tenant{ID: tenant, Escalations: map[string]*rulesfile.EscalationPolicy{}}
		}
	}
	return tenant, rules, version, from, to, nil
}

func tenantList(cfg *rulesfile.Config) string {
	if len(cfg.Tenants) == 0 {
		return "none"
	}
	ids := make([]string, 0, len(cfg.Tenants))
	for id := range cfg.Tenants {
		ids = append(ids, fmt.Sprintf("%q", id))
	}
	slices.Sort(ids)
	return strings.Join(ids, ", ")
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
