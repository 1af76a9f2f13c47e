package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

const kpisWindowHelp = `The window is -from/-to (RFC 3339, [from, to)) or -rolling (1h, 24h, 7d, 30d: day windows start
at local midnight in -time-zone N-1 days ago and end now); without either, -rolling 24h. Figures
are merged from hourly buckets, so bounds off the hour (a zone with a :30 or :45 offset) are
widened to the enclosing hours, and the output says so.`

// windowFlags are the window of a KPI query.
type windowFlags struct {
	From, To, Rolling, TimeZone string
}

func (w *windowFlags) register(s *envflag.Set) {
	s.String(&w.From, "from", "", "Start of the window, inclusive (RFC 3339, e.g. 2026-03-01T00:00:00Z); with -to, instead of -rolling.")
	s.String(&w.To, "to", "", "End of the window, exclusive (RFC 3339); with -from.")
	s.String(&w.Rolling, "rolling", "", "A rolling window ending now: 1h, 24h, 7d or 30d. Default 24h when -from/-to are not given.")
	s.String(&w.TimeZone, "time-zone", "", "IANA time zone of day windows and of the output's bounds, e.g. Europe/Berlin; empty is UTC.")
}

func (w *windowFlags) window() (*tpv1.Window, []error) {
	var errs []error
	from, err := parseTime("from", w.From)
	if err != nil {
		errs = append(errs, err)
	}
	to, err := parseTime("to", w.To)
	if err != nil {
		errs = append(errs, err)
	}
	if w.TimeZone != "" {
		if _, err := time.LoadLocation(w.TimeZone); err != nil {
			errs = append(errs, fmt.Errorf("-time-zone %q: not an IANA time zone name", w.TimeZone))
		}
	}
	ranged := w.From != "" || w.To != ""
	switch {
	case ranged && w.Rolling != "":
		errs = append(errs, errors.New("-rolling and -from/-to: give one of them"))
	case ranged && (w.From == "" || w.To == ""):
		errs = append(errs, errors.New("-from and -to: give both"))
	case ranged && len(errs) == 0 && !to.After(from):
		errs = append(errs, fmt.Errorf("-to %s: must be after -from %s", w.To, w.From))
	case !ranged && w.Rolling != "" && w.Rolling != "1h" && w.Rolling != "24h" && w.Rolling != "7d" && w.Rolling != "30d":
		errs = append(errs, fmt.Errorf("-rolling %q: want 1h, 24h, 7d or 30d", w.Rolling))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if ranged {
		return &tpv1.Window{Kind: &tpv1.Window_Range{Range: &tpv1.TimeRange{From: timestampOf(from), To: timestampOf(to)}}, TimeZone: w.TimeZone}, nil
	}
	rolling := w.Rolling
	if rolling == "" {
		rolling = "24h"
	}
	return &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: rolling}, TimeZone: w.TimeZone}, nil
}

const kpisGetSummary = `tpctl kpis get prints the KPIs of one agent (-agent), one team (-team), one contact-centre queue
(-queue: its call figures only) or the samples credited while tickets had no assignee
(-unassigned), over a window, from kpi's KpiService. An agent, team or queue with no data gets
zeros, not an error. Ids are the helpdesk's own, any Unicode.

` + kpisWindowHelp + `

Needs the tenant's kpis:read scope (or an operator key). Exit 0 with the figures, 1 when kpi
refused or failed (its code and message), 2 on bad flags.`

type kpisGetConfig struct {
	queryConfig
	windowFlags
	Agent, Team, Queue string
	Unassigned         bool
}

func kpiEndpoint() endpoint {
	return endpoint{addrFlag: "kpi-addr", service: "kpi"}
}

func kpisGet(args []string, cio cmdIO) error {
	var c kpisGetConfig
	s := envflag.New("tpctl kpis get", kpisGetSummary, cio.lookup)
	c.queryConfig.register(s, kpiEndpoint(), "127.0.0.1:9090", "kpis:read")
	c.windowFlags.register(s)
	s.String(&c.Agent, "agent", "", "Agent id whose KPIs to print.")
	s.String(&c.Team, "team", "", "Team id whose KPIs to print (over the team's tickets).")
	s.String(&c.Queue, "queue", "", "Queue id whose call KPIs to print (a queue has only call figures).")
	s.Bool(&c.Unassigned, "unassigned", false, "Print the tenant's unassigned figures: samples credited while a ticket had no assignee.")
	if err := parse(s, cio, args); err != nil {
		return err
	}
	errs := c.queryConfig.check()
	n := 0
	for _, set := range []bool{c.Agent != "", c.Team != "", c.Queue != "", c.Unassigned} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs = append(errs, errors.New("-agent, -team, -queue, -unassigned: give exactly one"))
	}
	w, werrs := c.windowFlags.window()
	if err := errors.Join(append(errs, werrs...)...); err != nil {
		return usageError{err}
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	kc := tpv1.NewKpiServiceClient(conn)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := c.callCtx(ctx)
	defer cancel()

	var (
		resp     proto.Message
		kind, id string
		kpis     *tpv1.Kpis
		resolved *tpv1.ResolvedWindow
	)
	switch {
	case c.Agent != "":
		r, err := kc.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: c.Tenant, AgentId: c.Agent, Window: w})
		if err != nil {
			return rpcFailed("get agent KPIs", err)
		}
		resp, kind, id, kpis, resolved = r, "agent", r.GetAgent().GetAgentId(), r.GetAgent().GetKpis(), r.GetWindow()
	case c.Team != "":
		r, err := kc.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: c.Tenant, TeamId: c.Team, Window: w})
		if err != nil {
			return rpcFailed("get team KPIs", err)
		}
		resp, kind, id, kpis, resolved = r, "team", r.GetTeamId(), r.GetKpis(), r.GetWindow()
	case c.Queue != "":
		r, err := kc.GetQueueKpis(ctx, &tpv1.GetQueueKpisRequest{Tenant: c.Tenant, QueueId: c.Queue, Window: w})
		if err != nil {
			return rpcFailed("get queue KPIs", err)
		}
		resp, kind, id, kpis, resolved = r, "queue", r.GetQueueId(), r.GetKpis(), r.GetWindow()
	default:
		r, err := kc.GetUnassignedKpis(ctx, &tpv1.GetUnassignedKpisRequest{Tenant: c.Tenant, Window: w})
		if err != nil {
			return rpcFailed("get unassigned KPIs", err)
		}
		resp, kind, id, kpis, resolved = r, "unassigned", "", r.GetKpis(), r.GetWindow()
	}
	if c.JSON {
		return writeJSON(cio.stdout, resp)
	}
	writeWindow(cio.stdout, resolved)
	t := newTable(cio.stdout, "KPI", kind)
	if id != "" {
		t.row("id", id)
	}
	rows := kpiRows(kpis)
	if kind == "queue" {
		rows = callRows(kpis) // the ticket rows of a queue are always zero
	}
	for _, r := range rows {
		t.row(r[0], r[1])
	}
	return t.flush()
}

func timestampOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// writeWindow prints the window the figures cover, and the service's note when it widened it.
func writeWindow(w io.Writer, r *tpv1.ResolvedWindow) {
	zone := r.GetTimeZone()
	if zone == "" {
		zone = "UTC"
	}
	fmt.Fprintf(w, "window %s to %s (%s)\n", ts(r.GetFrom()), ts(r.GetTo()), clean(zone))
	if r.GetAlignedToHour() {
		fmt.Fprintf(w, "note: %s\n", clean(r.GetNote()))
	}
}

func durRows(name string, d *tpv1.DurationStats) [][2]string {
	return [][2]string{
		{name + " count", fmt.Sprint(d.GetCount())},
		{name + " mean", secs(d.GetMeanSeconds())},
		{name + " p50", secs(d.GetP50Seconds())},
		{name + " p90", secs(d.GetP90Seconds())},
		{name + " p99", secs(d.GetP99Seconds())},
	}
}

func kpiRows(k *tpv1.Kpis) [][2]string {
	rows := durRows("first response", k.GetFirstResponse())
	rows = append(rows, durRows("next response", k.GetNextResponse())...)
	rows = append(rows, durRows("resolution", k.GetResolution())...)
	rows = append(rows,
		[2]string{"assigned", fmt.Sprint(k.GetAssigned())},
		[2]string{"assigned now resolved", fmt.Sprint(k.GetAssignedNowResolved())},
		[2]string{"resolution rate", pct(k.GetResolutionRate())},
		[2]string{"resolutions", fmt.Sprint(k.GetResolutions())},
		[2]string{"reopens", fmt.Sprint(k.GetReopens())},
		[2]string{"reopen rate", pct(k.GetReopenRate())},
		[2]string{"one-touch resolutions", fmt.Sprint(k.GetOneTouchResolutions())},
		[2]string{"one-touch rate", pct(k.GetOneTouchRate())},
		[2]string{"csat count", fmt.Sprint(k.GetCsatCount())},
		[2]string{"csat mean", strconv.FormatFloat(k.GetCsatMean(), 'f', 2, 64)},
		[2]string{"csat percent", strconv.FormatFloat(k.GetCsatPercent(), 'f', 1, 64) + "%"},
		[2]string{"sla first response met", fmt.Sprint(k.GetSlaFirstResponseMet())},
		[2]string{"sla first response breached", fmt.Sprint(k.GetSlaFirstResponseBreached())},
		[2]string{"sla first response compliance", pct(k.GetSlaFirstResponseCompliance())},
		[2]string{"sla next response met", fmt.Sprint(k.GetSlaNextResponseMet())},
		[2]string{"sla next response breached", fmt.Sprint(k.GetSlaNextResponseBreached())},
		[2]string{"sla resolution met", fmt.Sprint(k.GetSlaResolutionMet())},
		[2]string{"sla resolution breached", fmt.Sprint(k.GetSlaResolutionBreached())},
		[2]string{"qa reviews", fmt.Sprint(k.GetQaScore().GetCount())},
		[2]string{"qa score mean", strconv.FormatFloat(k.GetQaScore().GetMean(), 'f', 2, 64)},
		[2]string{"qa score p50", strconv.FormatFloat(k.GetQaScore().GetP50(), 'f', 1, 64)},
		[2]string{"qa score p90", strconv.FormatFloat(k.GetQaScore().GetP90(), 'f', 1, 64)},
		[2]string{"qa score p99", strconv.FormatFloat(k.GetQaScore().GetP99(), 'f', 1, 64)},
		[2]string{"qa auto-fails", fmt.Sprint(k.GetQaAutoFails())},
		[2]string{"qa auto-fail rate", pct(k.GetQaAutoFailRate())},
	)
	return append(rows, callRows(k)...)
}

// callRows are the contact-centre call figures: all a queue has.
func callRows(k *tpv1.Kpis) [][2]string {
	rows := [][2]string{
		{"calls offered", fmt.Sprint(k.GetCallsOffered())},
		{"calls answered", fmt.Sprint(k.GetCallsAnswered())},
		{"calls abandoned", fmt.Sprint(k.GetCallsAbandoned())},
		{"call abandon rate", pct(k.GetCallAbandonRate())},
		{"calls answered in service level", fmt.Sprint(k.GetCallsAnsweredInServiceLevel())},
		{"call service level", pct(k.GetCallServiceLevel())},
	}
	rows = append(rows, durRows("call speed of answer", k.GetCallSpeedOfAnswer())...)
	return append(rows, durRows("call handle time", k.GetCallHandleTime())...)
}

const kpisListSummary = `tpctl kpis list agents|teams|queues prints every agent (or team, or contact-centre queue with
calls) active in a window with its main KPIs (a queue's call figures), one row each, from kpi's
KpiService, ordered by -order-by. It pages through every page (or stops after -limit rows); -json
prints them as one document, in the API's ListAgentKpisResponse, ListTeamKpisResponse or
ListQueueKpisResponse form with every page's rows.

` + kpisWindowHelp + `

Needs the tenant's kpis:read scope (or an operator key). Exit 0 with the rows, 1 when kpi refused
or failed (its code and message), 2 on bad flags.`

type kpisListConfig struct {
	queryConfig
	windowFlags
	OrderBy, Team string
	Limit         int
	PageSize      int
}

// maxListPage is the largest page the escalation and delivery lists take; maxKpiPage the KPI lists'.
const (
	maxListPage = 500
	maxKpiPage  = 1000
)

func kpisList(args []string, cio cmdIO) error {
	if len(args) == 0 || (args[0] != "agents" && args[0] != "teams" && args[0] != "queues") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			args = append([]string{"agents"}, args...)
		} else {
			return usageError{errors.New("want \"agents\", \"teams\" or \"queues\" first, e.g. tpctl kpis list agents -tenant acme")}
		}
	}
	what := args[0]
	var c kpisListConfig
	s := envflag.New("tpctl kpis list "+what, kpisListSummary, cio.lookup)
	c.queryConfig.register(s, kpiEndpoint(), "127.0.0.1:9090", "kpis:read")
	c.windowFlags.register(s)
	s.String(&c.OrderBy, "order-by", "", "A KPI name (the JSON field in snake_case, e.g. csat_mean, assigned, first_response_p90), optionally followed by \" desc\"; default the id.")
	s.String(&c.Team, "team", "", "For agents: only agents credited samples for this team in the window.")
	s.Int(&c.Limit, "limit", 0, "Stop after this many rows; 0 prints every page.")
	s.Int(&c.PageSize, "page-size", 100, "Rows asked per call, 1 to 1000.")
	if err := parse(s, cio, args[1:]); err != nil {
		return err
	}
	errs := c.queryConfig.check()
	errs = append(errs, pageErrs(c.Limit, c.PageSize, maxKpiPage)...)
	if what != "agents" && c.Team != "" {
		errs = append(errs, errors.New("-team: only for agents"))
	}
	w, werrs := c.windowFlags.window()
	if err := errors.Join(append(errs, werrs...)...); err != nil {
		return usageError{err}
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	kc := tpv1.NewKpiServiceClient(conn)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	type row struct {
		id   string
		kpis *tpv1.Kpis
	}
	var (
		rows  []row
		out   proto.Message
		win   *tpv1.ResolvedWindow
		total int32
	)
	switch what {
	case "agents":
		all := &tpv1.ListAgentKpisResponse{}
		var err error
		all.Agents, all.NextPageToken, err = allPages(ctx, &c.queryConfig, "list agent KPIs", c.Limit, c.PageSize,
			func(ctx context.Context, token string, size int32) ([]*tpv1.AgentKpis, string, error) {
				r, err := kc.ListAgentKpis(ctx, &tpv1.ListAgentKpisRequest{Tenant: c.Tenant, TeamId: c.Team, Window: w, OrderBy: c.OrderBy, PageSize: size, PageToken: token})
				all.Window, all.TotalSize = r.GetWindow(), r.GetTotalSize()
				return r.GetAgents(), r.GetNextPageToken(), err
			})
		if err != nil {
			return err
		}
		for _, a := range all.Agents {
			rows = append(rows, row{a.GetAgentId(), a.GetKpis()})
		}
		out, win, total = all, all.Window, all.TotalSize
	case "queues":
		all := &tpv1.ListQueueKpisResponse{}
		var err error
		all.Queues, all.NextPageToken, err = allPages(ctx, &c.queryConfig, "list queue KPIs", c.Limit, c.PageSize,
			func(ctx context.Context, token string, size int32) ([]*tpv1.QueueKpis, string, error) {
				r, err := kc.ListQueueKpis(ctx, &tpv1.ListQueueKpisRequest{Tenant: c.Tenant, Window: w, OrderBy: c.OrderBy, PageSize: size, PageToken: token})
				all.Window, all.TotalSize = r.GetWindow(), r.GetTotalSize()
				return r.GetQueues(), r.GetNextPageToken(), err
			})
		if err != nil {
			return err
		}
		for _, q := range all.Queues {
			rows = append(rows, row{q.GetQueueId(), q.GetKpis()})
		}
		out, win, total = all, all.Window, all.TotalSize
	default:
		all := &tpv1.ListTeamKpisResponse{}
		var err error
		all.Teams, all.NextPageToken, err = allPages(ctx, &c.queryConfig, "list team KPIs", c.Limit, c.PageSize,
			func(ctx context.Context, token string, size int32) ([]*tpv1.TeamKpis, string, error) {
				r, err := kc.ListTeamKpis(ctx, &tpv1.ListTeamKpisRequest{Tenant: c.Tenant, Window: w, OrderBy: c.OrderBy, PageSize: size, PageToken: token})
				all.Window, all.TotalSize = r.GetWindow(), r.GetTotalSize()
				return r.GetTeams(), r.GetNextPageToken(), err
			})
		if err != nil {
			return err
		}
		for _, tk := range all.Teams {
			rows = append(rows, row{tk.GetTeamId(), tk.GetKpis()})
		}
		out, win, total = all, all.Window, all.TotalSize
	}
	if c.JSON {
		return writeJSON(cio.stdout, out)
	}
	writeWindow(cio.stdout, win)
	if what == "queues" {
		t := newTable(cio.stdout, "queue", "offered", "answered", "abandoned", "abandon rate", "service level", "asa p50", "asa p90", "aht mean")
		for _, r := range rows {
			k := r.kpis
			t.row(r.id, fmt.Sprint(k.GetCallsOffered()), fmt.Sprint(k.GetCallsAnswered()), fmt.Sprint(k.GetCallsAbandoned()),
				pct(k.GetCallAbandonRate()), pct(k.GetCallServiceLevel()), secs(k.GetCallSpeedOfAnswer().GetP50Seconds()),
				secs(k.GetCallSpeedOfAnswer().GetP90Seconds()), secs(k.GetCallHandleTime().GetMeanSeconds()))
		}
		if err := t.flush(); err != nil {
			return err
		}
		_, err = fmt.Fprintf(cio.stdout, "%d of %d %s\n", len(rows), total, what)
		return err
	}
	t := newTable(cio.stdout, what[:len(what)-1], "assigned", "resolutions", "res.rate", "first resp. p50", "p90", "resolution p50", "csat", "csat %", "sla first resp.")
	for _, r := range rows {
		k := r.kpis
		t.row(r.id, fmt.Sprint(k.GetAssigned()), fmt.Sprint(k.GetResolutions()), pct(k.GetResolutionRate()),
			secs(k.GetFirstResponse().GetP50Seconds()), secs(k.GetFirstResponse().GetP90Seconds()), secs(k.GetResolution().GetP50Seconds()),
			strconv.FormatFloat(k.GetCsatMean(), 'f', 2, 64), strconv.FormatFloat(k.GetCsatPercent(), 'f', 1, 64)+"%", pct(k.GetSlaFirstResponseCompliance()))
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(cio.stdout, "%d of %d %s\n", len(rows), total, what)
	return err
}
