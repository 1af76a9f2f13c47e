package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
)

// Bounds of a what-if: the rules as SimulateRules takes them, and the form carrying them. URL
// encoding can triple a text (a newline is %0A), so the form may be three times the rules.
const (
	maxRulesBytes     = 1 << 20
	maxRulesFormBytes = 3*maxRulesBytes + 64<<10
	maxSimulateDays   = 31
)

// notSimulatedHeader is the response header in which escalation names what a simulation left out.
const notSimulatedHeader = "ticketpulse-not-simulated"

type rulesData struct {
	Tenant  string
	Rules   *tpv1.GetRulesResponse
	YAML    string // the form's text: the loaded rules or the edited copy
	Range   string // 24h, 7d or custom
	From    string // custom range, dates (to included) in TZ
	To      string
	TZ      string // IANA zone of the custom range's dates; empty is UTC
	Err     string // why the form was refused, for its field
	ErrFor  string // "rules_yaml", "range" or "timeout"
	Result  *tpv1.SimulateRulesResponse
	NotSim  []string
	Ranges  []string
	Elapsed string
	// RulesMissing says why the loaded rules are not shown beside a what-if's answer.
	RulesMissing string
}

func (h *Handler) rules(w http.ResponseWriter, r *http.Request, s *session.Session) {
	// tz= (as the team and agent pages carry it) preselects the what-if's zone.
	tz := r.URL.Query().Get("tz")
	if _, err := zone(tz); err != nil {
		h.fail(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	resp, err := h.o.Esc.GetRules(ctx, &tpv1.GetRulesRequest{Tenant: s.Tenant})
	if err != nil {
		h.rpcFail(w, r, s, "rules", err)
		return
	}
	h.render(w, http.StatusOK, "rules", page{Title: "Rules", Session: s, Nav: "rules",
		Data: rulesData{Tenant: s.Tenant, Rules: resp, YAML: resp.GetRulesYaml(), Range: "7d", TZ: tz, Ranges: []string{"24h", "7d", "custom"}}})
}

// simulateRange is the TICKETS range a what-if replays; an error names the field and why. A
// custom range is of whole local days in tz (empty: UTC), from local midnight to local
// midnight, so a day with a DST change is 23 or 25 hours long.
func simulateRange(name, from, to, tz string, now time.Time) (*tpv1.TimeRange, error) {
	switch name {
	case "24h":
		return &tpv1.TimeRange{From: timestamppb.New(now.Add(-24 * time.Hour)), To: timestamppb.New(now)}, nil
	case "7d":
		return &tpv1.TimeRange{From: timestamppb.New(now.Add(-7 * 24 * time.Hour)), To: timestamppb.New(now)}, nil
	case "custom":
	default:
		return nil, fmt.Errorf("range: %q: want 24h, 7d or custom", name)
	}
	loc, err := zone(tz)
	if err != nil {
		return nil, err
	}
	f, err := time.ParseInLocation(time.DateOnly, from, loc)
	if err != nil {
		return nil, fmt.Errorf("from: %q is not a date (YYYY-MM-DD)", from)
	}
	t, err := time.ParseInLocation(time.DateOnly, to, loc)
	if err != nil {
		return nil, fmt.Errorf("to: %q is not a date (YYYY-MM-DD)", to)
	}
	t = t.AddDate(0, 0, 1) // the last day is included
	switch {
	case !t.After(f):
		return nil, fmt.Errorf("to: %s is before from %s", to, from)
	case t.After(f.AddDate(0, 0, maxSimulateDays)): // counted in days: DST days are not 24 h
		return nil, fmt.Errorf("to: the range is longer than %d days", maxSimulateDays)
	}
	return &tpv1.TimeRange{From: timestamppb.New(f), To: timestamppb.New(t)}, nil
}

func (h *Handler) simulate(w http.ResponseWriter, r *http.Request, s *session.Session) {
	f := r.PostForm
	d := rulesData{Tenant: s.Tenant, YAML: f.Get("rules_yaml"), Range: f.Get("range"), From: f.Get("from"), To: f.Get("to"), TZ: f.Get("tz"),
		Ranges: []string{"24h", "7d", "custom"}}
	// Refused before any call: the slot bounds the work one person can start.
	if !h.acquireSimulation(s.ID) {
		h.fail(w, r, s, http.StatusTooManyRequests, "what-if: a simulation of yours is still running; wait for it to finish")
		return
	}
	defer h.releaseSimulation(s.ID)
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	// The loaded rules are secondary here: the what-if's answer is the page.
	rules, err := h.o.Esc.GetRules(ctx, &tpv1.GetRulesRequest{Tenant: s.Tenant})
	d.Rules, d.RulesMissing = rules, h.degraded(s, "loaded rules", err)
	refuse := func(field, msg string) {
		d.ErrFor, d.Err = field, msg
		h.render(w, http.StatusBadRequest, "rules", page{Title: "Rules", Session: s, Nav: "rules", Data: d})
	}
	if len(d.YAML) > maxRulesBytes {
		refuse("rules_yaml", fmt.Sprintf("rules_yaml: %d bytes, at most %d", len(d.YAML), maxRulesBytes))
		return
	}
	rng, err := simulateRange(d.Range, d.From, d.To, d.TZ, h.o.Now())
	if err != nil {
		refuse("range", err.Error())
		return
	}
	sctx, scancel := context.WithTimeout(withCredential(r.Context(), s), h.o.SimulateTimeout)
	defer scancel()
	var md metadata.MD
	// The text as the form carried it; browsers send CRLF line ends, which YAML reads alike.
	started := time.Now()
	res, err := h.o.Esc.SimulateRules(sctx, &tpv1.SimulateRulesRequest{Tenant: s.Tenant, RulesYaml: strings.ReplaceAll(d.YAML, "\r\n", "\n"), Range: rng},
		grpc.Header(&md))
	if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument {
		refuse("rules_yaml", st.Message())
		return
	}
	// Our own bound ran out, not the browser: say so on the form, which keeps the edit. The
	// deadline travels with the call, so escalation may report it a moment before sctx ends;
	// escalation's own bound is longer than any -simulate-timeout, so DeadlineExceeded is ours.
	if (sctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded) && r.Context().Err() == nil {
		h.o.Log.Warn("what-if timed out", "tenant", s.Tenant, "timeout", h.o.SimulateTimeout, "err", err)
		d.ErrFor = "timeout"
		d.Err = fmt.Sprintf("The simulation did not finish within %s, the console's limit for a what-if: try a shorter range.", h.o.SimulateTimeout)
		h.render(w, http.StatusGatewayTimeout, "rules", page{Title: "Rules", Session: s, Nav: "rules", Data: d})
		return
	}
	if err != nil {
		h.rpcFail(w, r, s, "what-if", err)
		return
	}
	d.Result, d.NotSim, d.Elapsed = res, md.Get(notSimulatedHeader), time.Since(started).Round(time.Millisecond).String()
	h.render(w, http.StatusOK, "rules", page{Title: "Rules", Session: s, Nav: "rules", Data: d})
}

// acquireSimulation takes the session's one simulation slot; false when it is taken: a
// simulation replays days of events, and one person should not run several at once.
func (h *Handler) acquireSimulation(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.simulating[id] {
		return false
	}
	h.simulating[id] = true
	return true
}

func (h *Handler) releaseSimulation(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.simulating, id)
}
