package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

// maxNote is the longest note escalation takes with an acknowledgement or resolution.
const maxNote = 2048

func escalationEndpoint() endpoint {
	return endpoint{addrFlag: "escalation-addr", service: "escalation"}
}

const escalationsListSummary = `tpctl escalations list prints a tenant's escalations, newest trigger first, from escalation's
EscalationService: every filter given must match. It pages through every page (or stops after
-limit rows); -json prints one document in the API's ListEscalationsResponse form with every
page's escalations.

Needs the tenant's escalations:read scope (or an operator key). Exit 0 with the rows, 1 when
escalation refused or failed (its code and message), 2 on bad flags.`

type escalationsListConfig struct {
	queryConfig
	State, Rule, Team, Agent, Ticket string
	Queue                            string
	Severity                         string
	TriggeredFrom, TriggeredTo       string
	Limit, PageSize                  int
}

func escalationsList(args []string, cio cmdIO) error {
	var c escalationsListConfig
	s := envflag.New("tpctl escalations list", escalationsListSummary, cio.lookup)
	c.queryConfig.register(s, escalationEndpoint(), "127.0.0.1:9091", "escalations:read")
	s.String(&c.State, "state", "", "Only escalations in this state: open, acknowledged or resolved.")
	s.String(&c.Rule, "rule", "", "Only escalations of this rule (its name in the rules file).")
	s.String(&c.Team, "team", "", "Only escalations of this team.")
	s.String(&c.Agent, "agent", "", "Only escalations of this agent.")
	s.String(&c.Ticket, "ticket", "", "Only escalations of this ticket.")
	s.String(&c.Queue, "queue", "", "Only escalations of this contact-centre queue (those of kind: kpi rules with scope: queue).")
	s.String(&c.Severity, "severity", "", "Only escalations of this severity now: info, warning or critical (escalation filters, so every page is full).")
	s.String(&c.TriggeredFrom, "triggered-from", "", "Only escalations triggered at or after this time (RFC 3339).")
	s.String(&c.TriggeredTo, "triggered-to", "", "Only escalations triggered before this time (RFC 3339).")
	s.Int(&c.Limit, "limit", 0, "Stop after this many rows; 0 prints every page.")
	s.Int(&c.PageSize, "page-size", 100, "Rows asked per call, 1 to 500.")
	if err := parse(s, cio, args); err != nil {
		return err
	}
	errs := c.queryConfig.check()
	state, err := parseEnum("state", c.State, "ESCALATION_STATE_", tpv1.EscalationState_value)
	errs = append(errs, err)
	sev, err := parseEnum("severity", c.Severity, "SEVERITY_", tpv1.Severity_value)
	errs = append(errs, err)
	req := &tpv1.ListEscalationsRequest{Tenant: c.Tenant, State: tpv1.EscalationState(state), Rule: c.Rule, TeamId: c.Team, AgentId: c.Agent, TicketId: c.Ticket,
		QueueId: c.Queue, Severity: tpv1.Severity(sev)}
	tr, rerrs := timeRange("triggered-from", c.TriggeredFrom, "triggered-to", c.TriggeredTo)
	req.Triggered = tr
	errs = append(errs, rerrs...)
	errs = append(errs, pageErrs(c.Limit, c.PageSize, maxListPage)...)
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ec := tpv1.NewEscalationServiceClient(conn)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	all := &tpv1.ListEscalationsResponse{}
	all.Escalations, all.NextPageToken, err = allPages(ctx, &c.queryConfig, "list escalations", c.Limit, c.PageSize,
		func(ctx context.Context, token string, size int32) ([]*tpv1.Escalation, string, error) {
			req.PageToken, req.PageSize = token, size
			r, err := ec.ListEscalations(ctx, req)
			return r.GetEscalations(), r.GetNextPageToken(), err
		})
	if err != nil {
		return err
	}
	if c.JSON {
		return writeJSON(cio.stdout, all)
	}
	t := newTable(cio.stdout, "id", "state", "severity", "level", "rule", "subject", "triggered", "summary")
	for _, e := range all.Escalations {
		escalationRow(t, e)
	}
	if err := t.flush(); err != nil {
		return err
	}
	more := ""
	if all.NextPageToken != "" {
		more = " (more not shown: -limit)"
	}
	_, err = fmt.Fprintf(cio.stdout, "%d escalations%s\n", len(all.Escalations), more)
	return err
}

func escalationRow(t *table, e *tpv1.Escalation) {
	t.row(e.GetId(), enumWord(e.GetState().String(), "ESCALATION_STATE_"), enumWord(e.GetSeverity().String(), "SEVERITY_"),
		fmt.Sprint(e.GetLevel()), e.GetRule(), e.GetSubjectKind()+" "+e.GetSubjectId(), ts(e.GetTriggeredAt()), e.GetSummary())
}

// timeRange reads a [from, to) pair of flags; nil when neither is set.
func timeRange(fromFlag, fromV, toFlag, toV string) (*tpv1.TimeRange, []error) {
	var errs []error
	from, err := parseTime(fromFlag, fromV)
	if err != nil {
		errs = append(errs, err)
	}
	to, err := parseTime(toFlag, toV)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 || (fromV == "" && toV == "") {
		return nil, errs
	}
	if fromV != "" && toV != "" && !to.After(from) {
		return nil, []error{fmt.Errorf("-%s %s: must be after -%s %s", toFlag, toV, fromFlag, fromV)}
	}
	r := &tpv1.TimeRange{}
	if fromV != "" {
		r.From = timestampOf(from)
	}
	if toV != "" {
		r.To = timestampOf(to)
	}
	return r, nil
}

func pageErrs(limit, size, most int) []error {
	var errs []error
	if limit < 0 {
		errs = append(errs, fmt.Errorf("-limit %d: must not be negative", limit))
	}
	if size < 1 || size > most {
		errs = append(errs, fmt.Errorf("-page-size %d: must be between 1 and %d", size, most))
	}
	return errs
}

// pageSize asks no more than -limit still needs.
func pageSize(limit, size, have int) int32 {
	if limit > 0 {
		return int32(min(size, limit-have))
	}
	return int32(size)
}

// oneEscalation is the flags of the commands that act on one escalation.
type oneEscalation struct {
	queryConfig
	ID, Note string
}

func (o *oneEscalation) setup(name, summary, scope string, note bool, args []string, cio cmdIO) error {
	s := envflag.New("tpctl escalations "+name, summary, cio.lookup)
	o.queryConfig.register(s, escalationEndpoint(), "127.0.0.1:9091", scope)
	s.String(&o.ID, "id", "", "The escalation's id (as escalations list prints it). Required.")
	if note {
		s.String(&o.Note, "note", "", fmt.Sprintf("A note kept in the escalation's timeline with who did it (the authenticated caller), at most %d bytes.", maxNote))
	}
	if err := parse(s, cio, args); err != nil {
		return err
	}
	errs := o.queryConfig.check()
	if o.ID == "" {
		errs = append(errs, errors.New("-id: required"))
	}
	if len(o.Note) > maxNote {
		errs = append(errs, fmt.Errorf("-note: %d bytes, at most %d", len(o.Note), maxNote))
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	return nil
}

const escalationsGetSummary = `tpctl escalations get prints one escalation with its facts, labels and whole timeline, from
escalation's EscalationService; -json prints the API's GetEscalationResponse.

Needs the tenant's escalations:read scope (or an operator key). Exit 0, 1 when escalation refused
or failed (NotFound for an unknown id), 2 on bad flags.`

func escalationsGet(args []string, cio cmdIO) error {
	var o oneEscalation
	if err := o.setup("get", escalationsGetSummary, "escalations:read", false, args, cio); err != nil {
		return err
	}
	return o.call(cio, "get escalation", func(ctx context.Context, ec tpv1.EscalationServiceClient) (escalationResponse, error) {
		return ec.GetEscalation(ctx, &tpv1.GetEscalationRequest{Tenant: o.Tenant, Id: o.ID})
	})
}

const escalationsAckSummary = `tpctl escalations ack acknowledges an open escalation: it is no longer raised to its next
level. Who acknowledged is the authenticated caller (the key's name or the ID token's subject),
kept in the timeline with -note. Prints the escalation as it is now; -json prints the API's
AcknowledgeEscalationResponse.

Needs the tenant's escalations:write scope (or an operator key). Exit 0, 1 when escalation refused
or failed (e.g. FailedPrecondition for a resolved one), 2 on bad flags.`

func escalationsAck(args []string, cio cmdIO) error {
	var o oneEscalation
	if err := o.setup("ack", escalationsAckSummary, "escalations:write", true, args, cio); err != nil {
		return err
	}
	return o.call(cio, "acknowledge escalation", func(ctx context.Context, ec tpv1.EscalationServiceClient) (escalationResponse, error) {
		return ec.AcknowledgeEscalation(ctx, &tpv1.AcknowledgeEscalationRequest{Tenant: o.Tenant, Id: o.ID, Note: o.Note})
	})
}

const escalationsResolveSummary = `tpctl escalations resolve closes an escalation by hand; a condition that still holds triggers
a new one the next time it is judged. Who resolved is the authenticated caller, kept in the
timeline with -note. Prints the escalation as it is now; -json prints the API's
ResolveEscalationResponse.

Needs the tenant's escalations:write scope (or an operator key). Exit 0, 1 when escalation refused
or failed, 2 on bad flags.`

func escalationsResolve(args []string, cio cmdIO) error {
	var o oneEscalation
	if err := o.setup("resolve", escalationsResolveSummary, "escalations:write", true, args, cio); err != nil {
		return err
	}
	return o.call(cio, "resolve escalation", func(ctx context.Context, ec tpv1.EscalationServiceClient) (escalationResponse, error) {
		return ec.ResolveEscalation(ctx, &tpv1.ResolveEscalationRequest{Tenant: o.Tenant, Id: o.ID, Note: o.Note})
	})
}

// escalationResponse is what get, ack and resolve answer.
type escalationResponse interface {
	proto.Message
	GetEscalation() *tpv1.Escalation
}

func (o *oneEscalation) call(cio cmdIO, what string, do func(context.Context, tpv1.EscalationServiceClient) (escalationResponse, error)) error {
	conn, err := o.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := o.callCtx(ctx)
	defer cancel()
	r, err := do(ctx, tpv1.NewEscalationServiceClient(conn))
	if err != nil {
		return rpcFailed(what, err)
	}
	if o.JSON {
		return writeJSON(cio.stdout, r)
	}
	return writeEscalation(cio.stdout, r.GetEscalation())
}

func writeEscalation(w io.Writer, e *tpv1.Escalation) error {
	t := newTable(w, "field", "value")
	t.row("id", e.GetId())
	t.row("state", enumWord(e.GetState().String(), "ESCALATION_STATE_"))
	t.row("severity", enumWord(e.GetSeverity().String(), "SEVERITY_"))
	t.row("level", fmt.Sprint(e.GetLevel()))
	t.row("rule", e.GetRule())
	t.row("subject", e.GetSubjectKind()+" "+e.GetSubjectId())
	t.row("summary", e.GetSummary())
	t.row("triggered", ts(e.GetTriggeredAt()))
	t.row("updated", ts(e.GetUpdatedAt()))
	t.row("resolved", ts(e.GetResolvedAt()))
	for _, f := range e.GetFacts() {
		t.row("fact "+f.GetName(), f.GetValue())
	}
	keys := make([]string, 0, len(e.GetLabels()))
	for k := range e.GetLabels() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.row("label "+k, e.GetLabels()[k])
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(e.GetTimeline()) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tl := newTable(w, "at", "change", "level", "severity", "by", "note")
	for _, te := range e.GetTimeline() {
		tl.row(ts(te.GetAt()), enumWord(te.GetKind().String(), "CHANGE_KIND_"), fmt.Sprint(te.GetLevel()),
			enumWord(te.GetSeverity().String(), "SEVERITY_"), te.GetActor(), te.GetNote())
	}
	return tl.flush()
}

const escalationsWatchSummary = `tpctl escalations watch streams every lifecycle change of the tenant's escalations (triggered,
updated, raised, acknowledged, resolved) from now on, one line each, until interrupted (Ctrl-C:
exit 0). -json prints each change as one JSON object per line (the API's EscalationChange).

When the stream breaks (escalation restarting, the network) it reconnects with exponential
backoff from -backoff-min up to -backoff-max, saying so on standard error; changes made while it
was disconnected are not replayed (use escalations list for them). A refusal (bad credential,
wrong tenant, missing scope, bad argument) ends it with exit 1.

Needs the tenant's escalations:read scope (or an operator key).`

type watchConfig struct {
	queryConfig
	Rule                   string
	BackoffMin, BackoffMax time.Duration
}

func escalationsWatch(args []string, cio cmdIO) error {
	var c watchConfig
	s := envflag.New("tpctl escalations watch", escalationsWatchSummary, cio.lookup)
	c.queryConfig.register(s, escalationEndpoint(), "127.0.0.1:9091", "escalations:read")
	s.String(&c.Rule, "rule", "", "Only changes of this rule.")
	s.Duration(&c.BackoffMin, "backoff-min", 500*time.Millisecond, "First wait before reconnecting after the stream broke; doubled on each failure in a row.")
	s.Duration(&c.BackoffMax, "backoff-max", 30*time.Second, "Longest wait between reconnects.")
	if err := parse(s, cio, args); err != nil {
		return err
	}
	errs := c.queryConfig.check()
	if c.BackoffMin <= 0 {
		errs = append(errs, fmt.Errorf("-backoff-min %s: must be positive", c.BackoffMin))
	}
	if c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("-backoff-max %s: must be at least -backoff-min", c.BackoffMax))
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ec := tpv1.NewEscalationServiceClient(conn)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return watchEscalations(ctx, ec, c, cio)
}

// permanent is a refusal that reconnecting cannot cure.
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.NotFound, codes.Unimplemented, codes.FailedPrecondition:
		return true
	}
	return false
}

func watchEscalations(ctx context.Context, ec tpv1.EscalationServiceClient, c watchConfig, cio cmdIO) error {
	wait := c.BackoffMin
	for {
		stream, err := ec.WatchEscalations(ctx, &tpv1.WatchEscalationsRequest{Tenant: c.Tenant, Rule: c.Rule})
		if err == nil {
			fmt.Fprintf(cio.stderr, "watch: watching the escalations of tenant %s\n", c.Tenant)
		}
		for err == nil {
			var r *tpv1.WatchEscalationsResponse
			if r, err = stream.Recv(); err != nil {
				break
			}
			wait = c.BackoffMin // a change came through: the connection is good again
			if c.JSON {
				if werr := writeJSONLine(cio.stdout, r.GetChange()); werr != nil {
					return werr
				}
				continue
			}
			ch := r.GetChange()
			e := ch.GetEscalation()
			line := strings.Join([]string{ts(ch.GetAt()), enumWord(ch.GetKind().String(), "CHANGE_KIND_"), clean(e.GetId()),
				enumWord(e.GetState().String(), "ESCALATION_STATE_"), enumWord(e.GetSeverity().String(), "SEVERITY_"),
				fmt.Sprintf("level %d", e.GetLevel()), clean(e.GetRule()), clean(e.GetSubjectKind() + " " + e.GetSubjectId()), clean(e.GetSummary())}, "  ")
			if _, werr := fmt.Fprintln(cio.stdout, line); werr != nil {
				return werr
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if permanent(err) {
			return rpcFailed("watch escalations", err)
		}
		msg := "the stream ended"
		if err != nil && !errors.Is(err, io.EOF) {
			st := status.Convert(err)
			msg = fmt.Sprintf("%s: %s", st.Code(), clean(st.Message()))
		}
		fmt.Fprintf(cio.stderr, "watch: %s; reconnecting in %s\n", msg, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, c.BackoffMax)
	}
}
