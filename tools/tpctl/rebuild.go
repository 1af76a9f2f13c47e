package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

const rebuildSummary = `tpctl kpi rebuild rebuilds a tenant's KPIs from the TICKETS stream while live events keep flowing.

The kpi service replays the tenant's TICKETS messages (up to the last one stored when the rebuild
began) into a new generation of KPI keys, while its live consumer writes every newer event to both
generations; then it switches every reader to the new generation in one write and deletes the old
one after -rebuild-grace (kpi's flag). Use it after a KPI definition or SLA policy changed, or when
Redis lost or damaged figures. Readers never see a half-built generation.

The job runs inside kpi: tpctl needs only kpi's gRPC address and an operator API key. Progress
(events replayed of the total, events/s, ETA) goes to standard error, as a bar on a terminal and
as a line every few seconds otherwise. tpctl exits 0 once the new generation is switched in,
1 with the reason when the rebuild failed or could not start, 2 on bad flags. Interrupting tpctl
(or -detach) leaves the job running; running the same command again re-attaches to it (also
just after it switched). A rebuild of the tenant with another -from is refused while one runs
and until the previous one's old generation is deleted. A job survives a kpi crash: another
replica (or the restarted one) resumes it from its last checkpoint.

Memory: while a rebuild runs, the tenant's figures exist twice in Redis (the old and the new
generation), until the old one is deleted.

Flags:`

const escalationSummary = `tpctl escalation rebuild rebuilds a tenant's ticket log (the events escalation judges tickets
from) from the TICKETS stream while live events keep flowing, and judges every replayed ticket again.

The ticket log is a set of events keyed by event id that is only ever added to, so the replay fills
in, in place, whatever Redis lost: afterwards every ticket's log holds every event of the ticket
that TICKETS holds, as a log built from scratch would. Escalations already raised are not raised
again; breaches older than escalation's -history-horizon are counted, never raised or notified.
Use it when Redis lost or damaged ticket logs.

The job runs inside escalation: tpctl needs only escalation's gRPC address and an operator API
key. Progress (events replayed of the total, events/s, ETA) goes to standard error, as a bar on a
terminal and as a line every few seconds otherwise. tpctl exits 0 once the replay is done, 1 with
the reason when it failed or could not start, 2 on bad flags. Interrupting tpctl (or -detach)
leaves the job running; running the same command again re-attaches to it. A rebuild with another
-from is refused while one runs. A job survives an escalation crash: another replica (or the
restarted one) resumes it from its last checkpoint.`

type rebuildConfig struct {
	endpoint
	Tenant, From string
	Detach       bool
	Every        time.Duration
}

func (c *rebuildConfig) register(s *envflag.Set, svc service) {
	s.String(&c.Tenant, "tenant", "", "Tenant whose "+svc.thing+" is rebuilt ("+idtoken.TenantRule+"). Required.")
	if svc.name == "kpi" {
		s.String(&c.From, "from", "", "Rebuild only from the first TICKETS message stored at or after this time (RFC 3339, e.g. 2026-01-01T00:00:00Z): the new generation then holds only what the events since then derive, and older figures are gone. Use it when TICKETS retention (-stream-retention) already dropped older events (a rebuild from before the first message kept is refused), or to drop older history on purpose. The time is when the event reached TICKETS, not its occurred_at. Empty: from the first message.")
	} else {
		s.String(&c.From, "from", "", "Replay only from the first TICKETS message stored at or after this time (RFC 3339, e.g. 2026-01-01T00:00:00Z); the ticket log keeps the events it already holds. Needed when TICKETS retention (-stream-retention) already dropped older events (a rebuild from before the first message kept is refused). The time is when the event reached TICKETS, not its occurred_at. Empty: from the first message.")
	}
	c.endpoint = endpoint{addrFlag: "addr", service: svc.name, keyRequired: "an operator API key"}
	c.endpoint.register(s, svc.addr, "File holding an operator API key (tpctl apikey new -operator), sent as \"Authorization: Bearer\"; never printed. Required.")
	s.Bool(&c.Detach, "detach", false, "Start the rebuild (or find the running one), print its state and exit 0 without waiting; the job goes on inside "+svc.name+".")
	s.Duration(&c.Every, "progress-every", 5*time.Second, "When standard error is not a terminal, how often a progress line is printed.")
}

func (c *rebuildConfig) check() (from time.Time, err error) {
	var errs []error
	switch {
	case c.Tenant == "":
		errs = append(errs, errors.New("-tenant: required"))
	case !idtoken.ValidTenant(c.Tenant):
		errs = append(errs, fmt.Errorf("-tenant %q: %s", c.Tenant, idtoken.TenantRule))
	}
	if c.From != "" {
		if from, err = time.Parse(time.RFC3339, c.From); err != nil {
			errs = append(errs, fmt.Errorf("-from %q: want RFC 3339, e.g. 2026-01-01T00:00:00Z", c.From))
		}
	}
	errs = append(errs, c.endpoint.check()...)
	if c.Every <= 0 {
		errs = append(errs, fmt.Errorf("-progress-every %s: must be positive", c.Every))
	}
	return from, errors.Join(errs...)
}

// maxKeyFile bounds what is read of -key-file; a key is 47 bytes, an ID token a few KiB.
const maxKeyFile = 16 << 10

func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("-key-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", fmt.Errorf("-key-file %s: %w", path, err)
	}
	words := strings.Fields(string(b))
	switch {
	case len(b) > maxKeyFile:
		return "", fmt.Errorf("-key-file %s: more than %d bytes, not an API key or ID token", path, maxKeyFile)
	case len(words) == 0:
		return "", fmt.Errorf("-key-file %s: empty", path)
	case len(words) > 1:
		return "", fmt.Errorf("-key-file %s: want one API key, found several words", path)
	}
	return words[0], nil
}

// service is what differs between the services a rebuild runs in.
type service struct {
	name, addr, summary string
	// thing names what is rebuilt, in messages.
	thing string
	start func(ctx context.Context, conn *grpc.ClientConn, tenant string, from *timestamppb.Timestamp) (*tpv1.RebuildProgress, bool, error)
	// watch opens a progress stream; recv returns the next update.
	watch func(ctx context.Context, conn *grpc.ClientConn, tenant string) (recv func() (*tpv1.RebuildProgress, error), err error)
}

var kpiService = service{
	name: "kpi", addr: "127.0.0.1:9090", summary: rebuildSummary, thing: "KPIs",
	start: func(ctx context.Context, conn *grpc.ClientConn, tenant string, from *timestamppb.Timestamp) (*tpv1.RebuildProgress, bool, error) {
		resp, err := tpv1.NewKpiAdminServiceClient(conn).StartRebuild(ctx, &tpv1.StartRebuildRequest{Tenant: tenant, From: from})
		return resp.GetProgress(), resp.GetAttached(), err
	},
	watch: func(ctx context.Context, conn *grpc.ClientConn, tenant string) (func() (*tpv1.RebuildProgress, error), error) {
		return progressStream(tpv1.NewKpiAdminServiceClient(conn).WatchRebuild(ctx, &tpv1.WatchRebuildRequest{Tenant: tenant}))
	},
}

var escalationService = service{
	name: "escalation", addr: "127.0.0.1:9091", summary: escalationSummary, thing: "ticket log",
	start: func(ctx context.Context, conn *grpc.ClientConn, tenant string, from *timestamppb.Timestamp) (*tpv1.RebuildProgress, bool, error) {
		resp, err := tpv1.NewEscalationAdminServiceClient(conn).StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: tenant, From: from})
		return resp.GetProgress(), resp.GetAttached(), err
	},
	watch: func(ctx context.Context, conn *grpc.ClientConn, tenant string) (func() (*tpv1.RebuildProgress, error), error) {
		return progressStream(tpv1.NewEscalationAdminServiceClient(conn).WatchLogRebuild(ctx, &tpv1.WatchLogRebuildRequest{Tenant: tenant}))
	},
}

// progressStream reads a watch RPC's stream (both admin services send RebuildProgress).
func progressStream[Resp any, P interface {
	*Resp
	GetProgress() *tpv1.RebuildProgress
}](w grpc.ServerStreamingClient[Resp], err error) (func() (*tpv1.RebuildProgress, error), error) {
	if err != nil {
		return nil, err
	}
	return func() (*tpv1.RebuildProgress, error) {
		resp, err := w.Recv()
		return P(resp).GetProgress(), err
	}, nil
}

func rebuildCmd(svc service, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	var c rebuildConfig
	s := envflag.New("tpctl "+svc.name+" rebuild", svc.summary, lookup)
	s.SetOutput(stderr)
	c.register(s, svc)
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	from, err := c.check()
	if err != nil {
		return usageError{err}
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var ts *timestamppb.Timestamp
	if !from.IsZero() {
		ts = timestamppb.New(from)
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	p, attached, err := svc.start(startCtx, conn, c.Tenant, ts)
	cancel()
	if err != nil {
		return rpcError("start", err)
	}
	verb := "started"
	if attached {
		verb = "attached to the running"
	}
	if svc.name == "kpi" {
		fmt.Fprintf(stderr, "%s rebuild of tenant %s into generation %d (readers use %d until it is done)\n", verb, c.Tenant, p.GetTarget(), p.GetCurrent())
	} else {
		fmt.Fprintf(stderr, "%s rebuild of tenant %s's %s\n", verb, c.Tenant, svc.thing)
	}
	if c.Detach {
		fmt.Fprintf(stdout, "%s\n", describe(p))
		return nil
	}
	return watch(ctx, svc, conn, c.Tenant, stdout, stderr, c.Every)
}

func rpcError(what string, err error) error {
	st := status.Convert(err)
	return fmt.Errorf("%s: %s: %s", what, st.Code(), st.Message())
}

// watch follows the rebuild until it switched, is done or failed. A broken stream (the service
// restarting: the job resumes there) is watched again, for as long as it keeps answering within
// two minutes.
func watch(ctx context.Context, svc service, conn *grpc.ClientConn, tenant string, stdout, stderr io.Writer, every time.Duration) error {
	pr := newProgress(stderr, every)
	lastOK := time.Now()
	for {
		recv, err := svc.watch(ctx, conn, tenant)
		if err == nil {
			for {
				var p *tpv1.RebuildProgress
				if p, err = recv(); err != nil {
					break
				}
				lastOK = time.Now()
				pr.update(p)
				switch p.GetPhase() {
				case "switched", "done":
					pr.finish(p)
					fmt.Fprintf(stdout, "%s\n", describe(p))
					return nil
				case "failed":
					pr.finish(p)
					if svc.name == "kpi" {
						return fmt.Errorf("rebuild of tenant %s failed: %s (readers kept generation %d)", tenant, p.GetError(), p.GetCurrent())
					}
					return fmt.Errorf("rebuild of tenant %s's %s failed: %s", tenant, svc.thing, p.GetError())
				}
			}
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("the watch ended before the rebuild did")
		}
		if ctx.Err() != nil {
			pr.finish(nil)
			return fmt.Errorf("interrupted; the rebuild goes on inside %s (run the same command again to watch it)", svc.name)
		}
		if c := status.Code(err); c != codes.Unavailable && c != codes.Unknown && !strings.Contains(err.Error(), "watch ended") {
			pr.finish(nil)
			return rpcError("watch", err)
		}
		if time.Since(lastOK) > 2*time.Minute {
			pr.finish(nil)
			return fmt.Errorf("watch: %s did not answer for 2 minutes (last: %v); the rebuild may still run, run the same command again to watch it", svc.name, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func describe(p *tpv1.RebuildProgress) string {
	if p.GetTarget() == 0 { // a rebuild in place: no generations
		if p.GetPhase() == "building" {
			return fmt.Sprintf("tenant %s: building, %d of about %d events replayed", p.GetTenant(), p.GetEventsDone(), p.GetEventsTotal())
		}
		return fmt.Sprintf("tenant %s: %s (%d events replayed)", p.GetTenant(), p.GetPhase(), p.GetEventsDone())
	}
	s := fmt.Sprintf("tenant %s: %s, generation %d", p.GetTenant(), p.GetPhase(), p.GetCurrent())
	if p.GetPhase() == "building" {
		s += fmt.Sprintf(" -> %d, %d of about %d events replayed", p.GetTarget(), p.GetEventsDone(), p.GetEventsTotal())
	} else {
		s += fmt.Sprintf(" (%d events replayed)", p.GetEventsDone())
	}
	return s
}
