package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

// maxRulesFile is the largest edited rules file SimulateRules takes.
const maxRulesFile = 1 << 20

// notSimulatedHeader is the response header in which escalation names what a simulation left out.
const notSimulatedHeader = "ticketpulse-not-simulated"

const rulesGetSummary = `tpctl rules get prints the tenant's SLA policies, quality and KPI rules and escalation policies
as escalation loaded them: a rules file holding only that tenant, ready to edit and pass to
"tpctl rules simulate -file". The rules' version and load time go to standard error; -json prints
the API's GetRulesResponse.

Needs the tenant's escalations:read scope (or an operator key). Exit 0, 1 when escalation refused
or failed, 2 on bad flags.`

func rulesGet(args []string, cio cmdIO) error {
	var q queryConfig
	s := envflag.New("tpctl rules get", rulesGetSummary, cio.lookup)
	q.register(s, escalationEndpoint(), "127.0.0.1:9091", "escalations:read")
	if err := parse(s, cio, args); err != nil {
		return err
	}
	if err := errors.Join(q.check()...); err != nil {
		return usageError{err}
	}
	conn, err := q.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := q.callCtx(ctx)
	defer cancel()
	r, err := tpv1.NewEscalationServiceClient(conn).GetRules(ctx, &tpv1.GetRulesRequest{Tenant: q.Tenant})
	if err != nil {
		return rpcFailed("get rules", err)
	}
	if q.JSON {
		return writeJSON(cio.stdout, r)
	}
	fmt.Fprintf(cio.stderr, "rules version %s, loaded %s\n", clean(r.GetVersion()), ts(r.GetLoadedAt()))
	_, err = io.WriteString(cio.stdout, r.GetRulesYaml())
	return err
}

const rulesSimulateSummary = `tpctl rules simulate asks escalation what its rules, or an edited copy (-file), would have raised
over a past time range of the tenant's TICKETS, and how that differs from what was raised:
added (would fire, did not), removed (fired, would not) and same. escalation replays the range in
memory: nothing is stored, scheduled, published or notified. What a simulation cannot replay
(KPI rules, acknowledgements) is printed as a note on standard error.

The range is -from and -to (RFC 3339), at most 31 days, or -last (e.g. 168h) ending now. A long
range can take a while: raise -timeout (escalation itself stops a simulation after its
-simulate-timeout). -json prints the API's SimulateRulesResponse.

Needs the tenant's escalations:read scope (or an operator key). Exit 0 (whatever the difference),
1 when escalation refused or failed (an invalid -file is InvalidArgument with the line and reason),
2 on bad flags.`

type rulesSimulateConfig struct {
	queryConfig
	File     string
	From, To string
	Last     time.Duration
	Only     string
}

func rulesSimulate(args []string, cio cmdIO) error {
	var c rulesSimulateConfig
	s := envflag.New("tpctl rules simulate", rulesSimulateSummary, cio.lookup)
	c.queryConfig.register(s, escalationEndpoint(), "127.0.0.1:9091", "escalations:read")
	s.String(&c.File, "file", "", fmt.Sprintf("An edited rules file holding only -tenant (as tpctl rules get prints it), at most %d bytes; - reads standard input. Empty simulates the loaded rules.", maxRulesFile))
	s.String(&c.From, "from", "", "Start of the replayed range (RFC 3339), with -to; not with -last.")
	s.String(&c.To, "to", "", "End of the replayed range (RFC 3339, exclusive), with -from.")
	s.Duration(&c.Last, "last", 0, "Replay this long a range ending now (e.g. 168h for a week) instead of -from/-to.")
	s.String(&c.Only, "only", "", "Print only these differences in the table: added, removed or same, comma-separated (the counts always cover every row).")
	if err := parse(s, cio, args); err != nil {
		return err
	}
	errs := c.queryConfig.check()
	var rng *tpv1.TimeRange
	switch {
	case c.Last != 0 && (c.From != "" || c.To != ""):
		errs = append(errs, errors.New("-last: not with -from or -to"))
	case c.Last < 0:
		errs = append(errs, fmt.Errorf("-last %s: must be positive", c.Last))
	case c.Last > 0:
		now := time.Now()
		rng = &tpv1.TimeRange{From: timestampOf(now.Add(-c.Last)), To: timestampOf(now)}
	case c.From == "" || c.To == "":
		errs = append(errs, errors.New("-from and -to (or -last): required"))
	default:
		r, rerrs := timeRange("from", c.From, "to", c.To)
		rng = r
		errs = append(errs, rerrs...)
	}
	only, err := parseDifferences(c.Only)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	yaml, err := readRulesFile(c.File, cio.stdin)
	if err != nil {
		return err
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	var header metadata.MD
	r, err := tpv1.NewEscalationServiceClient(conn).SimulateRules(ctx,
		&tpv1.SimulateRulesRequest{Tenant: c.Tenant, RulesYaml: yaml, Range: rng}, grpc.Header(&header))
	if err != nil {
		return rpcFailed("simulate rules", err)
	}
	for _, note := range header.Get(notSimulatedHeader) {
		fmt.Fprintf(cio.stderr, "note: not simulated: %s\n", clean(note))
	}
	if r.GetTruncated() {
		fmt.Fprintln(cio.stderr, "note: the simulation stopped at escalation's limit of escalations per answer: narrow the range")
	}
	if c.JSON {
		return writeJSON(cio.stdout, r)
	}
	t := newTable(cio.stdout, "difference", "at", "rule", "subject", "level", "severity", "summary")
	for _, e := range r.GetEscalations() {
		d := e.GetDifference()
		if len(only) > 0 && !only[d] {
			continue
		}
		t.row(enumWord(d.String(), "DIFFERENCE_"), ts(e.GetAt()), e.GetRule(), e.GetSubjectKind()+" "+e.GetSubjectId(),
			fmt.Sprint(e.GetLevel()), enumWord(e.GetSeverity().String(), "SEVERITY_"), e.GetSummary())
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(cio.stdout, "%d added, %d removed, %d same; %d events replayed with rules version %s\n",
		r.GetAdded(), r.GetRemoved(), r.GetSame(), r.GetEventsReplayed(), clean(r.GetRulesVersion()))
	return err
}

// parseDifferences reads -only's comma-separated words.
func parseDifferences(v string) (map[tpv1.Difference]bool, error) {
	if v == "" {
		return nil, nil
	}
	out := map[tpv1.Difference]bool{}
	for _, w := range strings.Split(v, ",") {
		n, err := parseEnum("only", strings.TrimSpace(w), "DIFFERENCE_", tpv1.Difference_value)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("-only %q: want added, removed or same", w)
		}
		out[tpv1.Difference(n)] = true
	}
	return out, nil
}

// readRulesFile reads -file ("" for none, "-" for standard input), refusing more than escalation takes.
func readRulesFile(name string, stdin io.Reader) (string, error) {
	if name == "" {
		return "", nil
	}
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", fmt.Errorf("-file: %w", err)
		}
		defer f.Close()
		in = f
	}
	b, err := io.ReadAll(io.LimitReader(in, maxRulesFile+1))
	if err != nil {
		return "", fmt.Errorf("-file %s: %w", name, err)
	}
	if len(b) > maxRulesFile {
		return "", usageError{fmt.Errorf("-file %s: larger than %d bytes", name, maxRulesFile)}
	}
	if len(b) == 0 {
		return "", usageError{fmt.Errorf("-file %s: empty (leave -file out to simulate the loaded rules)", name)}
	}
	return string(b), nil
}
