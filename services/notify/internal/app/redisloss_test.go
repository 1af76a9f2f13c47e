package app

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/delivered"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/watermark"
)

// Redis goes back in time mid-flow: a copy of its data is taken, changes keep coming, some are
// delivered and some wait in their group (acknowledged, not sent yet), then Redis restarts from
// the copy, having lost all of that. notify notices, replays the lost range of ESCALATIONS, and
// the receiver gets every change exactly once: those waiting are sent, those delivered before
// the loss are logged as suppressed, with the delivery that carried them.
func TestEveryChangeOnceAcrossARedisLoss(t *testing.T) {
	h := newHook(t)
	// Changes of the team "slow" wait long enough in their group to be lost there.
	s := newStack(t, webhookRouting(h.srv.URL, `  routes:
    - matchers: ['team="slow"']
      group_wait: 4s
`))
	srv, rdb := testenv.NewRedis(t)
	s.redisURL = testenv.RedisURL(rdb)
	cfg := s.config()
	cfg.WatermarkInterval = 100 * time.Millisecond
	running := servicetest.Start(t, func(ctx context.Context, hk service.Hooks) error { return testDeps(hk).Run(ctx, cfg, quiet) })
	client := tpv1.NewNotificationServiceClient(running.DialAs(s.tenants.Acme))

	teams := []string{"billing", "support", "sales"}
	n := 0
	var all []string
	send := func(count int, team string) []string {
		var refs []string
		for range count {
			c := change(fmt.Sprintf("T-%03d", n), "sla-first-response", cmp.Or(team, teams[n%len(teams)]), tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1)
			n++
			refs = append(refs, c.GetEscalation().GetId()+"#1")
			s.publish(t, c)
		}
		all = append(all, refs...)
		return refs
	}
	// received counts each change once per distinct message: a retry of one delivery repeats its
	// webhook-id and body, and a receiver drops it; a webhook-id with another body is a defect.
	received := func() map[string]int {
		got := map[string]int{}
		bodies := map[string][]byte{}
		for _, r := range h.got() {
			if prev, seen := bodies[r.id]; seen {
				if !bytes.Equal(prev, r.body) {
					t.Errorf("webhook-id %s sent with two different bodies", r.id)
				}
				continue
			}
			bodies[r.id] = r.body
			for _, ref := range changeRefs(t, r.body) {
				got[ref]++
			}
		}
		return got
	}
	allIn := func(refs []string) func() bool {
		return func() bool {
			got := received()
			for _, ref := range refs {
				if got[ref] == 0 {
					return false
				}
			}
			return true
		}
	}

	waitFor(t, "the first changes delivered", allIn(send(30, "")))
	// Let the watermark record the first changes as done.
	time.Sleep(500 * time.Millisecond)
	snap := srv.Snapshot(t)
	lost := send(30, "")
	waitFor(t, "the changes after the copy delivered", allIn(lost))
	waiting := send(15, "slow")
	waitFor(t, "the waiting changes acknowledged", func() bool { return s.acked(t) })
	if got := received(); slices.ContainsFunc(waiting, func(ref string) bool { return got[ref] > 0 }) {
		t.Fatal("a change of the slow group was sent before the loss; the test needs them waiting")
	}
	inFlight := send(15, "")
	srv.RestartFrom(t, snap)
	send(30, "")
	waitFor(t, "every change delivered", allIn(all))

	// The replay routes the lost changes again; each is held back and logged as such.
	already := regexp.MustCompile(`^already delivered to hook, not sent again: .*by delivery [0-9a-f]{24}\.\d+\.[0-9a-f]{8} at `)
	var suppressed []string
	waitFor(t, "the replayed changes logged as suppressed", func() bool {
		suppressed = suppressed[:0]
		list, err := client.ListDeliveries(context.Background(), &tpv1.ListDeliveriesRequest{Tenant: "acme", Status: tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED, PageSize: 500})
		if err != nil {
			return false
		}
		for _, d := range list.GetDeliveries() {
			if !already.MatchString(d.GetReason()) {
				t.Errorf("suppressed delivery %s: reason %q", d.GetId(), d.GetReason())
			}
			suppressed = append(suppressed, d.GetChanges()...)
		}
		for _, ref := range lost {
			if !slices.Contains(suppressed, ref) {
				return false
			}
		}
		return true
	})
	for _, ref := range suppressed {
		if !slices.Contains(lost, ref) && !slices.Contains(inFlight, ref) {
			t.Errorf("%s suppressed, yet it was not delivered before the loss", ref)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a duplicate would arrive by the next group interval
	got := received()
	for _, ref := range all {
		if got[ref] != 1 {
			t.Errorf("%s received %d times, want once", ref, got[ref])
		}
	}
	if len(got) != len(all) {
		t.Errorf("received %d distinct changes, want %d", len(got), len(all))
	}

	resp, err := http.Get(running.AdminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^notify_redelivery_suppressed_total\{[^}]*receiver="hook"[^}]*\} (\d+)`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics lacks notify_redelivery_suppressed_total{receiver=\"hook\"}:\n%s", grep(body, "notify_"))
	}
	if v, _ := strconv.Atoi(string(m[1])); v < len(lost) {
		t.Errorf("notify_redelivery_suppressed_total = %d, want at least the %d changes lost", v, len(lost))
	}
}

// acked reports whether notify's durable acknowledged everything in ESCALATIONS.
func (s *stack) acked(t *testing.T) bool {
	t.Helper()
	ctx := context.Background()
	st, err := s.js.Stream(ctx, stream.EscalationsName)
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Consumer(ctx, "notify")
	if err != nil {
		return false
	}
	ci, err := c.Info(ctx)
	return err == nil && ci.AckFloor.Stream >= si.State.LastSeq
}

// grep keeps the lines of text holding s.
func grep(text []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(text), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// notify meets a Redis without its watermark while its durable has acknowledged history (Redis
// emptied, or the first start of a version that records watermarks, with no delivered record
// yet): it adopts the durable's position and replays nothing, so no old escalation reaches the
// supervisors again; what comes next is delivered as usual.
func TestMissingWatermarkIsAdopted(t *testing.T) {
	h := newHook(t)
	s := newStack(t, webhookRouting(h.srv.URL, ""))
	_, rdb := testenv.NewRedis(t)
	s.redisURL = testenv.RedisURL(rdb)
	cfg := s.config()
	cfg.WatermarkInterval = 100 * time.Millisecond
	run := func() *servicetest.Running {
		return servicetest.Start(t, func(ctx context.Context, hk service.Hooks) error { return testDeps(hk).Run(ctx, cfg, quiet) })
	}
	count := func() map[string]int {
		got := map[string]int{}
		ids := map[string]bool{}
		for _, r := range h.got() {
			if !ids[r.id] {
				ids[r.id] = true
				for _, ref := range changeRefs(t, r.body) {
					got[ref]++
				}
			}
		}
		return got
	}
	var all []string
	for i := range 20 {
		c := change(fmt.Sprintf("T-%02d", i), "sla-first-response", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1)
		all = append(all, c.GetEscalation().GetId()+"#1")
		s.publish(t, c)
	}
	first := run()
	waitFor(t, "the history delivered", func() bool { return len(count()) == 20 })
	waitFor(t, "the history acknowledged", func() bool { return s.acked(t) })
	first.Stop()
	ctx := context.Background()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.js.DeleteKeyValue(ctx, delivered.Bucket); err != nil {
		t.Fatal(err)
	}
	run()
	time.Sleep(time.Second) // ten watermark ticks
	c := change("T-new", "sla-first-response", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1)
	all = append(all, c.GetEscalation().GetId()+"#1")
	s.publish(t, c)
	waitFor(t, "the new change delivered", func() bool { return count()["sla-first-response.t.T-new.1#1"] > 0 })
	time.Sleep(1500 * time.Millisecond) // a replayed change would arrive by the next group interval
	got := count()
	for _, ref := range all {
		if got[ref] != 1 {
			t.Errorf("%s received %d times, want once", ref, got[ref])
		}
	}
	if n, err := rdb.Exists(ctx, watermark.Key(Name, "notify")).Result(); err != nil || n != 1 {
		t.Errorf("notify's watermark: %d, %v; want it recorded again", n, err)
	}
}
