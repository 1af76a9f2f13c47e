package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/logrebuild"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/ticketlog"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// runRebuilding runs one replica with quick rebuild leases and small replay batches.
func (s *stack) runRebuilding(t *testing.T, batch int) *servicetest.Running {
	t.Helper()
	cfg := s.config()
	return servicetest.Start(t, func(ctx context.Context, h service.Hooks) error {
		rc := logrebuild.Config{Lease: 2 * time.Second, Checkpoint: 100 * time.Millisecond, Check: 500 * time.Millisecond, Batch: batch}
		return Deps{Hooks: h, Now: s.clock.now, Rebuild: &rc}.Run(ctx, cfg, quiet)
	})
}

// ticketLogs reads every ticket log of acme: key -> sorted event ids.
func (s *stack) ticketLogs(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	keys := testenv.Keys(t, s.rdb, "tp:{acme:t:*}:esc:ev")
	out := map[string][]string{}
	for _, k := range keys {
		ids, err := s.rdb.HKeys(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		out[k] = ids
	}
	return out
}

// caughtUp waits until escalation's TICKETS consumer acknowledged every message.
func (s *stack) caughtUp(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, "escalation caught up with TICKETS", func() bool {
		st, err := s.js.Stream(ctx, stream.TicketsName)
		if err != nil {
			return false
		}
		si, err := st.Info(ctx)
		if err != nil {
			return false
		}
		c, err := s.js.Consumer(ctx, stream.TicketsName, "escalation")
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.AckFloor.Stream >= si.State.LastSeq && ci.NumAckPending == 0
	})
}

func (s *stack) ticketLife(t *testing.T, n int) {
	t.Helper()
	id := fmt.Sprintf("T-%d", n)
	now := s.clock.now()
	c := createdAgo(id, now, 3*time.Hour)
	c.Id = id + "-c"
	r := reply(id, now.Add(-90*time.Minute))
	r.Id, r.Public = id+"-r", proto.Bool(false) // a private note: the first response is breached

	s.publish(t, c, r)
}

// Redis lost some tickets' logs: a rebuild replays TICKETS into the log while events keep coming,
// ends with every log holding every event of its ticket, and raises no escalation twice.
func TestTicketLogRebuild(t *testing.T) {
	s := newStack(t, "")
	for n := 0; n < 60; n++ {
		s.ticketLife(t, n)
	}
	r := s.runRebuilding(t, 7)
	s.caughtUp(t)
	want := s.ticketLogs(t)
	if len(want) != 60 {
		t.Fatalf("%d ticket logs, want 60", len(want))
	}
	// The escalation changes of the tickets known before the rebuild.
	oldChanges := func() int {
		n := 0
		for _, c := range s.changes(t) {
			var k int
			if _, err := fmt.Sscanf(c.GetEscalation().GetSubjectId(), "T-%d", &k); err == nil && k < 60 {
				n++
			}
		}
		return n
	}
	waitFor(t, "every old ticket's breach raised", func() bool { return oldChanges() >= 60 })
	time.Sleep(300 * time.Millisecond)
	changesBefore := oldChanges()
	ctx := context.Background()
	var lost []string
	for k := range want {
		if len(lost) < 20 {
			lost = append(lost, k)
		}
	}
	s.rdb.Del(ctx, lost...)
	s.rdb.HDel(ctx, ticketlog.Key(ticketlog.Ticket{Tenant: "acme", ID: "T-59"}), "T-59-r")

	// New tickets keep arriving during the rebuild.
	var live sync.WaitGroup
	live.Add(1)
	go func() {
		defer live.Done()
		for n := 60; n < 80; n++ {
			s.ticketLife(t, n)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	admin := tpv1.NewEscalationAdminServiceClient(r.DialAs(s.tenants.Operator))
	start, err := admin.StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: "acme"})
	if err != nil || start.GetAttached() || start.GetProgress().GetPhase() != "building" {
		t.Fatalf("StartLogRebuild = %v, %v", start, err)
	}
	if again, err := admin.StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: "acme"}); err != nil || !again.GetAttached() {
		t.Errorf("the same request again = %v, %v; want attached", again, err)
	}
	w, err := admin.WatchLogRebuild(ctx, &tpv1.WatchLogRebuildRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	var last *tpv1.RebuildProgress
	for {
		resp, err := w.Recv()
		if err != nil {
			break
		}
		last = resp.GetProgress()
	}
	if last.GetPhase() != "done" || last.GetEventsDone() < 120 {
		t.Fatalf("watch ended with %v", last)
	}
	live.Wait()
	s.caughtUp(t)
	got := s.ticketLogs(t)
	for n := 60; n < 80; n++ {
		want[ticketlog.Key(ticketlog.Ticket{Tenant: "acme", ID: fmt.Sprintf("T-%d", n)})] = []string{fmt.Sprintf("T-%d-c", n), fmt.Sprintf("T-%d-r", n)}
	}
	if len(got) != len(want) {
		t.Errorf("%d ticket logs after the rebuild, want %d", len(got), len(want))
	}
	for k, ids := range want {
		if !slices.Equal(got[k], ids) {
			t.Errorf("%s holds %v, want %v", k, got[k], ids)
		}
	}
	// Judging the replayed tickets again raised nothing twice.
	time.Sleep(500 * time.Millisecond)
	if n := oldChanges(); n != changesBefore {
		t.Errorf("%d escalation changes of the old tickets after the rebuild, want the %d from before", n, changesBefore)
	}
}

// Stopped mid-rebuild, the restarted replica resumes the job from its checkpoint.
func TestTicketLogRebuildResumes(t *testing.T) {
	s := newStack(t, "")
	for n := 0; n < 250; n++ {
		s.ticketLife(t, n)
	}
	first := s.runRebuilding(t, 1)
	s.caughtUp(t)
	want := s.ticketLogs(t)
	ctx := context.Background()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	s.rdb.Del(ctx, keys...)
	if _, err := tpv1.NewEscalationAdminServiceClient(first.DialAs(s.tenants.Operator)).StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	states := logrebuild.NewStates(s.rdb)
	var mid logrebuild.State
	waitFor(t, "a checkpoint in the middle", func() bool {
		st, err := states.Get(ctx, "acme")
		if err != nil || !st.Building {
			t.Fatalf("state %+v, %v: the rebuild ended before it could be stopped", st, err)
		}
		mid = st
		return st.Checkpoint > 0 && st.Checkpoint+20 < st.End
	})
	first.Stop()
	stopped, err := states.Get(ctx, "acme")
	if err != nil || !stopped.Building {
		t.Fatalf("after the stop: %+v, %v", stopped, err)
	}
	s.runRebuilding(t, 50)
	lowest := stopped.Checkpoint
	var final logrebuild.State
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := states.Get(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if st.Building {
			lowest = min(lowest, st.Checkpoint)
		} else {
			final = st
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not resumed: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if final.Result != "done" || !final.Started.Equal(mid.Started) || lowest < stopped.Checkpoint {
		t.Errorf("final %+v, lowest checkpoint %d after the stop at %d: want the same job resumed and done", final, lowest, stopped.Checkpoint)
	}
	if final.Done < int64(final.End) || final.Done >= 2*int64(final.End) {
		t.Errorf("replayed %d events for %d messages", final.Done, final.End)
	}
	got := s.ticketLogs(t)
	for k, ids := range want {
		if !slices.Equal(got[k], ids) {
			t.Errorf("%s holds %v, want %v", k, got[k], ids)
		}
	}
}

// Only operators may rebuild a ticket log; bad requests name the field.
func TestTicketLogRebuildAuth(t *testing.T) {
	for _, m := range tpv1.EscalationAdminService_ServiceDesc.Methods {
		if Spec.Access["/"+tpv1.EscalationAdminService_ServiceDesc.ServiceName+"/"+m.MethodName] != auth.Operator {
			t.Errorf("%s does not require %s", m.MethodName, auth.Operator)
		}
	}
	for _, m := range tpv1.EscalationAdminService_ServiceDesc.Streams {
		if Spec.Access["/"+tpv1.EscalationAdminService_ServiceDesc.ServiceName+"/"+m.StreamName] != auth.Operator {
			t.Errorf("%s does not require %s", m.StreamName, auth.Operator)
		}
	}
	s := newStack(t, "")
	r := s.runRebuilding(t, 10)
	ts := s.tenants
	call := map[string]func(ctx context.Context, c tpv1.EscalationAdminServiceClient, tenant string) error{
		"StartLogRebuild": func(ctx context.Context, c tpv1.EscalationAdminServiceClient, tenant string) error {
			_, err := c.StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: tenant})
			return err
		},
		"WatchLogRebuild": func(ctx context.Context, c tpv1.EscalationAdminServiceClient, tenant string) error {
			w, err := c.WatchLogRebuild(ctx, &tpv1.WatchLogRebuildRequest{Tenant: tenant})
			if err != nil {
				return err
			}
			for {
				if _, err := w.Recv(); err != nil {
					if err.Error() == "EOF" {
						return nil
					}
					return err
				}
			}
		},
	}
	if len(call) != len(tpv1.EscalationAdminService_ServiceDesc.Methods)+len(tpv1.EscalationAdminService_ServiceDesc.Streams) {
		t.Errorf("the table covers %d RPCs of the service's %d", len(call), len(tpv1.EscalationAdminService_ServiceDesc.Methods)+len(tpv1.EscalationAdminService_ServiceDesc.Streams))
	}
	tests := []struct {
		name, key, tenant string
		code              codes.Code
		msg               string
	}{
		{"no credential", "", "acme", codes.Unauthenticated, "no credential: send Authorization: Bearer <key or ID token>"},
		{"revoked", ts.AcmeRevoked, "acme", codes.Unauthenticated, "revoked credential"},
		{"tenant key with every scope", ts.Acme, "acme", codes.PermissionDenied, "the credential lacks the scope operator"},
		{"other tenant's key", ts.Globex, "acme", codes.PermissionDenied, "the credential is not for this tenant"},
		{"operator, unknown tenant", ts.Operator, "initech", codes.NotFound, "unknown tenant"},
		{"operator", ts.Operator, "globex", codes.OK, ""},
	}
	for _, tt := range tests {
		c := tpv1.NewEscalationAdminServiceClient(r.DialAs(tt.key))
		for _, m := range []string{"StartLogRebuild", "WatchLogRebuild"} {
			t.Run(tt.name+"/"+m, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				st := status.Convert(call[m](ctx, c, tt.tenant))
				if st.Code() != tt.code || st.Message() != tt.msg {
					t.Fatalf("= %v %q, want %v %q", st.Code(), st.Message(), tt.code, tt.msg)
				}
			})
		}
	}
	op := tpv1.NewEscalationAdminServiceClient(r.DialAs(ts.Operator))
	ctx := context.Background()
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	_, err := op.StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: "acme", From: timestamppb.New(future)})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != "from: "+future.Format(time.RFC3339)+" is in the future" {
		t.Errorf("from in the future = %v %q", st.Code(), st.Message())
	}
	w, err := op.WatchLogRebuild(ctx, &tpv1.WatchLogRebuildRequest{Tenant: "acme"})
	if err == nil {
		_, err = w.Recv()
	}
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "WatchLogRebuild: tenant acme's ticket log has never been rebuilt; start a rebuild first" {
		t.Errorf("watch before any rebuild = %v %q", st.Code(), st.Message())
	}
	// A second rebuild with another from while one runs is refused.
	for n := 0; n < 300; n++ {
		s.ticketLife(t, n)
	}
	s.caughtUp(t)
	if _, err := op.StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, err = op.StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: "acme", From: timestamppb.New(time.Now().Add(-time.Minute))})
	if st, _ := logrebuild.NewStates(s.rdb).Get(ctx, "acme"); st.Building {
		if got := status.Convert(err); got.Code() != codes.FailedPrecondition ||
			!strings.HasPrefix(got.Message(), "StartLogRebuild: tenant acme: a rebuild of the tenant's ticket log is running: it started at "+st.Started.Format(time.RFC3339)+", rebuilds from the first message, and has replayed ") {
			t.Errorf("a different rebuild while one runs = %v %q", got.Code(), got.Message())
		}
	}
}

// tpctl escalation rebuild against a real escalation: it rebuilds the lost logs and exits 0.
func TestTpctlEscalationRebuild(t *testing.T) {
	s := newStack(t, "")
	for n := 0; n < 30; n++ {
		s.ticketLife(t, n)
	}
	r := s.runRebuilding(t, 5)
	s.caughtUp(t)
	want := s.ticketLogs(t)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	s.rdb.Del(context.Background(), keys...)
	dir := t.TempDir()
	bin := filepath.Join(dir, "tpctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ticketpulse/ticketpulse/tools/tpctl").CombinedOutput(); err != nil {
		t.Fatalf("build tpctl: %v\n%s", err, out)
	}
	keyFile := filepath.Join(dir, "operator.key")
	if err := os.WriteFile(keyFile, []byte(s.tenants.Operator+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "escalation", "rebuild", "-tenant", "acme", "-addr", r.GRPC, "-key-file", keyFile, "-progress-every", "100ms")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tpctl: %v\nstdout %s\nstderr %s", err, stdout.String(), stderr.String())
	}
	if !strings.HasPrefix(stderr.String(), "started rebuild of tenant acme's ticket log\n") || !strings.Contains(stderr.String(), "rebuild of tenant acme done: 60 events replayed\n") ||
		stdout.String() != "tenant acme: done (60 events replayed)\n" {
		t.Errorf("stdout %q\nstderr %q", stdout.String(), stderr.String())
	}
	got := s.ticketLogs(t)
	for k, ids := range want {
		if !slices.Equal(got[k], ids) {
			t.Errorf("%s holds %v, want %v", k, got[k], ids)
		}
	}
	if strings.Contains(stderr.String()+stdout.String(), s.tenants.Operator) {
		t.Error("the key appears in tpctl's output")
	}
}

// A job resumed after retention dropped messages it had not replayed yet fails with the reason.
func TestTicketLogRebuildFailsWhenRetentionOvertookIt(t *testing.T) {
	s := newStack(t, "")
	for n := 0; n < 250; n++ {
		s.ticketLife(t, n)
	}
	first := s.runRebuilding(t, 1)
	s.caughtUp(t)
	ctx := context.Background()
	if _, err := tpv1.NewEscalationAdminServiceClient(first.DialAs(s.tenants.Operator)).StartLogRebuild(ctx, &tpv1.StartLogRebuildRequest{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	states := logrebuild.NewStates(s.rdb)
	waitFor(t, "a checkpoint in the middle", func() bool {
		st, err := states.Get(ctx, "acme")
		if err != nil || !st.Building {
			t.Fatalf("state %+v, %v: the rebuild ended before it could be stopped", st, err)
		}
		return st.Checkpoint > 0 && st.Checkpoint+20 < st.End
	})
	first.Stop()
	stopped, _ := states.Get(ctx, "acme")
	str, err := s.js.Stream(ctx, stream.TicketsName)
	if err != nil {
		t.Fatal(err)
	}
	keep := stopped.Checkpoint + 5
	if err := str.Purge(ctx, jetstream.WithPurgeSequence(keep)); err != nil {
		t.Fatal(err)
	}
	second := s.runRebuilding(t, 50)
	var final logrebuild.State
	waitFor(t, "the job's end", func() bool {
		st, err := states.Get(ctx, "acme")
		final = st
		return err == nil && !st.Building
	})
	want := fmt.Sprintf("TICKETS no longer holds the events to rebuild from: the job stopped at sequence %d and the stream now starts at %d (retention); start it again with a later --from",
		stopped.Checkpoint, keep)
	if final.Result != "failed" || final.Err != want {
		t.Fatalf("job %+v, want failed with %q", final, want)
	}
	w, err := tpv1.NewEscalationAdminServiceClient(second.DialAs(s.tenants.Operator)).WatchLogRebuild(ctx, &tpv1.WatchLogRebuildRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := w.Recv(); err != nil || resp.GetProgress().GetPhase() != "failed" || resp.GetProgress().GetError() != want {
		t.Errorf("WatchLogRebuild = %v, %v", resp, err)
	}
}
