// Package dispatch is notify's work: it routes each escalation change to its receivers, records
// why a notification is not sent (silence, quiet hours, inhibition, disabled receiver), collects
// the rest into groups, sends each group as one message when it is due, and retries a failed
// message with backoff and jitter until the receiver's deadline, after which it goes to the
// DEADLETTER stream with every attempt. Nothing is dropped silently: every outcome is in the
// delivery log before the change is acknowledged or the timer released.
package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/routing"
	"github.com/ticketpulse/ticketpulse/services/platform/deadletter"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// Timers is the due-queue of group sends and retries.
type Timers interface {
	Schedule(ctx context.Context, id string, due time.Time) error
	ScheduleEarlier(ctx context.Context, ts []timers.Timer) error
	Cancel(ctx context.Context, ids ...string) error
}

// Publisher stores dead letters.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Options tune retries.
type Options struct {
	// BackoffBase is the first retry's delay (doubling per attempt, with jitter) and BackoffMax
	// its cap.
	BackoffBase, BackoffMax time.Duration
	// Busy is how long a delivery waits when its receiver has its maximum in flight.
	Busy time.Duration
	// Metrics, when set, counts attempts, outcomes and suppressions.
	Metrics *Metrics
}

// Routing is a loaded routing file with a sender per receiver.
type Routing struct {
	Config  *routing.Config
	senders map[string]*sendState
}

// sendState is one receiver's sender and limits on this replica.
type sendState struct {
	cfg         *receiver.Config
	sender      receiver.Sender
	fingerprint string
	limiter     *rate.Limiter
	slots       chan struct{}
}

// NewRouting builds the senders of a routing file; a receiver that cannot be built is an error.
func NewRouting(cfg *routing.Config, opts receiver.Options) (*Routing, error) {
	r := &Routing{Config: cfg, senders: map[string]*sendState{}}
	for name, rc := range cfg.Receivers {
		s, err := receiver.New(*rc, opts)
		if err != nil {
			return nil, fmt.Errorf("receiver %s: %w", name, err)
		}
		l := rc.Limits
		r.senders[name] = &sendState{
			cfg: rc, sender: s, fingerprint: fingerprint(rc),
			limiter: rate.NewLimiter(rate.Limit(l.RatePerSecond), max(l.Burst, 1)),
			slots:   make(chan struct{}, max(l.Concurrency, 1)),
		}
	}
	return r, nil
}

// fingerprint identifies where a receiver sends to: a receiver disabled by a 410 comes back
// when this changes (a new URL or address).
func fingerprint(rc *receiver.Config) string {
	data, _ := json.Marshal(struct {
		S, T *receiver.ChatConfig
		W    *receiver.WebhookConfig
		E    *receiver.EmailConfig
	}{rc.Slack, rc.Teams, rc.Webhook, rc.Email})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// Dispatcher routes, groups and delivers.
type Dispatcher struct {
	store    *deliveries.Store
	timers   Timers
	pub      Publisher
	routing  atomic.Pointer[Routing]
	now      func() time.Time
	opts     Options
	log      *slog.Logger
	inflight sync.Map // delivery timer ids being attempted on this replica
	sends    sync.WaitGroup
}

// New returns a dispatcher using r until SetRouting swaps it.
func New(store *deliveries.Store, tm Timers, pub Publisher, r *Routing, now func() time.Time, opts Options, log *slog.Logger) *Dispatcher {
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	if opts.Busy <= 0 {
		opts.Busy = 250 * time.Millisecond
	}
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil)
	}
	d := &Dispatcher{store: store, timers: tm, pub: pub, now: now, opts: opts, log: log}
	d.routing.Store(r)
	return d
}

// SetRouting swaps in a reloaded routing file.
func (d *Dispatcher) SetRouting(r *Routing) { d.routing.Store(r) }

// Routing is the routing in force.
func (d *Dispatcher) Routing() *Routing { return d.routing.Load() }

// Timer ids: kind letter, tenant, and the group or delivery id.
const sep = "\x1f"

func groupTimer(tenant, gid string) string    { return "g" + sep + tenant + sep + gid }
func reminderTimer(tenant, gid string) string { return "r" + sep + tenant + sep + gid }
func deliveryTimer(tenant, id string) string  { return "d" + sep + tenant + sep + id }
func kindWord(k tpv1.ChangeKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "CHANGE_KIND_"))
}
func stateWord(s tpv1.EscalationState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "ESCALATION_STATE_"))
}

// Labels are what routes, silences and inhibition rules match: the escalation's labels plus
// subject_kind, escalation_id, change (the change's kind) and state.
func Labels(c *tpv1.EscalationChange) map[string]string {
	e := c.GetEscalation()
	out := make(map[string]string, len(e.GetLabels())+4)
	for k, v := range e.GetLabels() {
		out[k] = v
	}
	out["subject_kind"] = e.GetSubjectKind()
	out["escalation_id"] = e.GetId()
	out["change"] = kindWord(c.GetKind())
	out["state"] = stateWord(e.GetState())
	if out["tenant"] == "" {
		out["tenant"] = e.GetTenant()
	}
	return out
}

// Handle routes a batch of changes. It returns once every outcome is recorded: the change is in
// its groups (whose sends are planned) or logged as suppressed.
func (d *Dispatcher) Handle(ctx context.Context, changes []*tpv1.EscalationChange) error {
	r := d.routing.Load()
	now := d.now()
	open := map[string][]map[string]string{}
	var wakes []timers.Timer
	var errs []error
	for _, c := range changes {
		tenant := c.GetEscalation().GetTenant()
		labels := Labels(c)
		isOpen := c.GetEscalation().GetState() != tpv1.EscalationState_ESCALATION_STATE_RESOLVED
		if err := d.store.Open(ctx, tenant, c.GetEscalation().GetId(), labels, isOpen); err != nil {
			errs = append(errs, err)
			continue
		}
		// The open escalations are only read when some rule could inhibit: a tenant may have
		// thousands open.
		if _, ok := open[tenant]; !ok && len(r.Config.Inhibits) > 0 {
			ls, err := d.store.OpenLabels(ctx, tenant)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			open[tenant] = ls
		}
		data, err := proto.Marshal(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, route := range r.Config.Root.Match(labels) {
			w, err := d.route(ctx, r, route, tenant, c, data, labels, open[tenant], now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			wakes = append(wakes, w...)
		}
	}
	if len(wakes) > 0 {
		if err := d.timers.ScheduleEarlier(ctx, wakes); err != nil {
			errs = append(errs, fmt.Errorf("plan group sends: %w", err))
		}
	}
	return errors.Join(errs...)
}

// route puts one change on one route: suppressed with its reason, or into the receiver's group.
func (d *Dispatcher) route(ctx context.Context, r *Routing, route *routing.Route, tenant string, c *tpv1.EscalationChange, data []byte,
	labels map[string]string, open []map[string]string, now time.Time) ([]timers.Timer, error) {
	key, groupLabels := route.GroupKey(labels)
	gid := deliveries.GroupID(route.Receiver, key)
	reason, kind, err := d.suppressed(ctx, r, route, labels, open, now)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		d.opts.Metrics.suppress(route.Receiver, kind)
		rec := deliveries.NewRecord(tenant, gid+".s."+suppressedID(c), route.Receiver, key, groupLabels,
			[]*tpv1.EscalationChange{c}, nil, now)
		rec.Status, rec.Reason = tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED, reason
		_, err := d.store.Create(ctx, rec)
		return nil, err
	}
	added, err := d.store.Add(ctx, tenant, route.Receiver, gid, key, groupLabels, c, data, route.RepeatInterval)
	if err != nil || !added.PlanFlush {
		return nil, err
	}
	due := now.Add(route.GroupWait)
	if !added.LastSent.IsZero() {
		due = added.LastSent.Add(route.GroupInterval)
		if due.Before(now) {
			due = now
		}
	}
	return []timers.Timer{{ID: groupTimer(tenant, gid), Due: due}}, nil
}

// suppressedID is a change reference usable in a key: escalation ids hold dots, never '#'.
func suppressedID(c *tpv1.EscalationChange) string { return deliveries.ChangeRef(c) }

// suppressed says why a change must not go to the route's receiver now, or "" to send it, with
// the kind of reason for metrics.
func (d *Dispatcher) suppressed(ctx context.Context, r *Routing, route *routing.Route, labels map[string]string,
	open []map[string]string, now time.Time) (reason, kind string, err error) {
	if s := r.Config.Silenced(labels, now); s != nil {
		return "silenced until " + s.Ends.UTC().Format(time.RFC3339) + ": " + s.Comment, "silence", nil
	}
	if route.QuietAt(now) {
		return "quiet hours (" + route.QuietName + ")", "quiet_hours", nil
	}
	others := make([]map[string]string, 0, len(open))
	for _, o := range open {
		if o["escalation_id"] != labels["escalation_id"] {
			others = append(others, o)
		}
	}
	if rule, src := r.Config.Inhibited(labels, others); rule != nil {
		return "inhibited by open escalation " + src["escalation_id"] + " (" + src["rule"] + ")", "inhibited", nil
	}
	if ss := r.senders[route.Receiver]; ss != nil {
		dis, err := d.store.IsDisabled(ctx, route.Receiver, ss.fingerprint)
		if err != nil {
			return "", "", err
		}
		if dis != nil {
			return "receiver disabled: " + dis.Reason, "disabled", nil
		}
	}
	return "", "", nil
}

// Fire handles due timers: a group's send or a delivery's retry. Sends run in the background so
// a slow receiver never holds up the timers of others; each send's timer is first pushed past
// its attempt's timeout, so a replica that dies mid-send leaves it to be retried.
func (d *Dispatcher) Fire(ctx context.Context, cs []timers.Claimed) []error {
	errs := make([]error, len(cs))
	for i, c := range cs {
		kind, rest, _ := strings.Cut(c.ID, sep)
		tenant, ref, ok := strings.Cut(rest, sep)
		switch {
		case !ok:
			d.log.Error("dropping a timer with a malformed id", "id", c.ID)
		case kind == "g":
			errs[i] = d.flush(ctx, tenant, ref)
		case kind == "d":
			errs[i] = d.retry(ctx, tenant, ref)
		case kind == "r":
			errs[i] = d.remind(ctx, tenant, ref)
		default:
			d.log.Error("dropping a timer of unknown kind", "id", c.ID)
		}
	}
	return errs
}

// flush turns a group's pending changes into a logged delivery and starts its first attempt.
func (d *Dispatcher) flush(ctx context.Context, tenant, gid string) error {
	now := d.now()
	b, err := d.store.Take(ctx, tenant, gid, now)
	if err != nil || b == nil {
		return err
	}
	return d.deliver(ctx, b, now)
}

// remind repeats a group's escalations still open once its repeat interval has passed since its
// last send, and plans the next look.
func (d *Dispatcher) remind(ctx context.Context, tenant, gid string) error {
	now := d.now()
	b, wait, err := d.store.Remind(ctx, tenant, gid, now)
	switch {
	case err != nil:
		return err
	case b != nil:
		return d.deliver(ctx, b, now)
	case !wait.IsZero():
		return d.timers.Schedule(ctx, reminderTimer(tenant, gid), wait)
	}
	return nil
}

// deliver logs a batch as a delivery, starts its first attempt, and lets the group know when to
// consider a reminder.
func (d *Dispatcher) deliver(ctx context.Context, b *deliveries.Batch, now time.Time) error {
	tenant := b.Tenant
	rec := deliveries.NewRecord(tenant, b.DeliveryID(), b.Receiver, b.Key, b.GroupLabels, b.Changes, b.Data, now)
	rec.Reminder = b.Reminder
	created, err := d.store.Create(ctx, rec)
	if err != nil {
		return err
	}
	if !created {
		// A flush that crashed after logging: its delivery may even be done already.
		if rec, err = d.store.Get(ctx, tenant, rec.ID); err != nil {
			return err
		}
		if _, busy := d.inflight.Load(deliveryTimer(tenant, rec.ID)); busy || rec.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING {
			return d.store.Taken(ctx, b)
		}
	}
	// Logged, and its attempt started (which sets the delivery's own timer): the delivery
	// carries on from here, so the group can let go.
	if err := d.start(ctx, rec); err != nil {
		return err
	}
	// The reminder timer works out from the group when a reminder is due, if ever.
	if err := d.timers.Schedule(ctx, reminderTimer(tenant, b.GroupID), now); err != nil {
		return err
	}
	return d.store.Taken(ctx, b)
}

// retry attempts a logged delivery that is still pending.
func (d *Dispatcher) retry(ctx context.Context, tenant, id string) error {
	tid := deliveryTimer(tenant, id)
	if _, busy := d.inflight.Load(tid); busy {
		return d.timers.Schedule(ctx, tid, d.now().Add(d.opts.Busy))
	}
	rec, err := d.store.Get(ctx, tenant, id)
	if errors.Is(err, deliveries.ErrNotFound) {
		d.log.Warn("delivery gone from the log (trimmed); not retried", "tenant", tenant, "delivery", id)
		return nil
	}
	if err != nil || rec.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING {
		return err
	}
	return d.start(ctx, rec)
}

// start begins an attempt in the background, unless the receiver is at its concurrency cap.
func (d *Dispatcher) start(ctx context.Context, rec *deliveries.Record) error {
	tid := deliveryTimer(rec.Tenant, rec.ID)
	now := d.now()
	ss := d.routing.Load().senders[rec.Receiver]
	if ss == nil {
		return d.fail(ctx, rec, deliveries.Attempt{At: now, Error: "receiver not configured"}, "receiver "+rec.Receiver+" is no longer in the routing file")
	}
	if dis, err := d.store.IsDisabled(ctx, rec.Receiver, ss.fingerprint); err != nil {
		return err
	} else if dis != nil {
		return d.fail(ctx, rec, deliveries.Attempt{At: now, Error: "receiver disabled"}, "receiver disabled: "+dis.Reason)
	}
	select {
	case ss.slots <- struct{}{}:
	default:
		return d.timers.Schedule(ctx, tid, now.Add(d.opts.Busy))
	}
	// Should this replica die mid-send, the timer brings the delivery back after the attempt
	// could have ended.
	if err := d.timers.Schedule(ctx, tid, now.Add(ss.cfg.Limits.Timeout+5*time.Second)); err != nil {
		<-ss.slots
		return err
	}
	d.inflight.Store(tid, true)
	d.sends.Add(1)
	go func() {
		defer d.sends.Done()
		defer d.inflight.Delete(tid)
		defer func() { <-ss.slots }()
		// The attempt outlives the caller's context: it is bounded by its own timeout.
		actx := context.WithoutCancel(ctx)
		d.attempt(actx, ss, rec)
	}()
	return nil
}

// Wait waits for the attempts in flight (on shutdown).
func (d *Dispatcher) Wait() { d.sends.Wait() }

// attempt sends once and records the outcome: delivered, retry planned, or failed for good.
func (d *Dispatcher) attempt(ctx context.Context, ss *sendState, rec *deliveries.Record) {
	tid := deliveryTimer(rec.Tenant, rec.ID)
	if err := ss.limiter.Wait(ctx); err != nil {
		d.log.Warn("rate limiter", "receiver", rec.Receiver, "err", err)
	}
	changes, err := rec.DecodedChanges()
	if err != nil {
		_ = d.fail(ctx, rec, deliveries.Attempt{At: d.now(), Error: err.Error()}, "undecodable changes")
		return
	}
	n := &receiver.Notification{ID: rec.Tenant + "." + rec.ID, Receiver: rec.Receiver, GroupKey: rec.GroupKey,
		GroupLabels: rec.GroupLabels, Changes: changes, At: d.now(), Reminder: rec.Reminder}
	res := ss.sender.Send(ctx, n)
	now := d.now()
	a := deliveries.Attempt{At: now, Status: res.Status, Latency: res.Latency}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	tries := len(rec.Attempts) + 1
	var outcome error
	result := "failed"
	switch {
	case res.Err == nil:
		result = "ok"
	case res.Gone:
		result = "gone"
	case res.Retryable:
		result = "retry"
	}
	d.opts.Metrics.attempt(rec.Receiver, result, res.Latency.Seconds())
	switch {
	case res.Err == nil:
		d.opts.Metrics.outcome(rec.Receiver, "delivered")
		outcome = d.store.Attempted(ctx, rec.Tenant, rec.ID, a, tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, "", now)
		if outcome == nil {
			outcome = d.timers.Cancel(ctx, tid)
		}
	case res.Gone:
		reason := fmt.Sprintf("endpoint gone (%d): receiver %s disabled until its address changes", res.Status, rec.Receiver)
		d.log.Error("receiver disabled", "receiver", rec.Receiver, "status", res.Status, "err", res.Err)
		outcome = errors.Join(
			d.store.Disable(ctx, rec.Receiver, deliveries.Disabled{Reason: reason, At: now, Fingerprint: ss.fingerprint}),
			d.fail(ctx, rec, a, reason))
	case res.Retryable:
		next := now.Add(d.backoff(tries))
		deadline := rec.Created.Add(ss.cfg.Limits.Deadline)
		if next.After(deadline) {
			outcome = d.fail(ctx, rec, a, fmt.Sprintf("deadline %s passed after %d attempts; last: %s", ss.cfg.Limits.Deadline, tries, a.Error))
			break
		}
		outcome = d.store.Attempted(ctx, rec.Tenant, rec.ID, a, tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING,
			fmt.Sprintf("attempt %d failed (%s); next at %s", tries, a.Error, next.UTC().Format(time.RFC3339)), now)
		if outcome == nil {
			outcome = d.timers.Schedule(ctx, tid, next)
		}
	default:
		outcome = d.fail(ctx, rec, a, fmt.Sprintf("not retryable: %s", a.Error))
	}
	if outcome != nil {
		// The delivery's timer is still set past this attempt, so it comes back and is retried.
		d.log.Warn("record delivery attempt", "delivery", rec.ID, "err", outcome)
	}
}

// backoff is the wait before attempt n+1: exponential with "equal jitter" (half fixed, half
// random), so retries of many deliveries spread out instead of arriving together.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.opts.BackoffBase << min(n-1, 20)
	if b <= 0 || b > d.opts.BackoffMax {
		b = d.opts.BackoffMax
	}
	return b/2 + rand.N(b/2+1)
}

// fail records a delivery as failed for good and dead-letters it with every attempt.
func (d *Dispatcher) fail(ctx context.Context, rec *deliveries.Record, a deliveries.Attempt, reason string) error {
	now := d.now()
	all := append(append([]deliveries.Attempt{}, rec.Attempts...), a)
	body, err := json.Marshal(struct {
		*deliveries.Record
		Status   string               `json:"status"`
		Reason   string               `json:"reason"`
		Attempts []deliveries.Attempt `json:"attempts"`
	}{rec, "failed", reason, all})
	if err != nil {
		return err
	}
	if err := deadletter.Publish(ctx, d.pub, deadletter.Letter{Service: "notify", Tenant: rec.Tenant, Data: body,
		Reason: reason, Delivery: rec.ID, MsgID: "notify-" + rec.Tenant + "-" + rec.ID}); err != nil {
		// Not dead-lettered yet: the delivery stays pending and its timer retries this.
		return fmt.Errorf("dead-letter delivery %s: %w", rec.ID, err)
	}
	if err := d.store.Attempted(ctx, rec.Tenant, rec.ID, a, tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED, reason, now); err != nil {
		return err
	}
	d.opts.Metrics.outcome(rec.Receiver, "failed")
	return d.timers.Cancel(ctx, deliveryTimer(rec.Tenant, rec.ID))
}

// Test sends a sample notification to a receiver now, outside any limit, and reports it.
func (d *Dispatcher) Test(ctx context.Context, receiverName, tenant string) (*tpv1.Attempt, bool, error) {
	ss := d.routing.Load().senders[receiverName]
	if ss == nil {
		return nil, false, fmt.Errorf("%w: %q", ErrUnknownReceiver, receiverName)
	}
	now := d.now()
	sample := &tpv1.EscalationChange{Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, Sequence: 1, At: timestamppb.New(now),
		Escalation: &tpv1.Escalation{Id: "test.t.T-TEST.1", Tenant: tenant, Rule: "test", SubjectKind: "ticket", SubjectId: "T-TEST",
			State: tpv1.EscalationState_ESCALATION_STATE_OPEN, Severity: tpv1.Severity_SEVERITY_INFO, Level: 1,
			Labels:  map[string]string{"tenant": tenant, "rule": "test", "severity": "info", "level": "1", "ticket": "T-TEST"},
			Summary: "Test notification from Ticketpulse: this receiver works.", TriggeredAt: timestamppb.New(now), UpdatedAt: timestamppb.New(now)}}
	n := &receiver.Notification{ID: fmt.Sprintf("test-%d", now.UnixNano()), Receiver: receiverName, GroupKey: "test",
		GroupLabels: map[string]string{"tenant": tenant}, Changes: []*tpv1.EscalationChange{sample}, At: now}
	res := ss.sender.Send(ctx, n)
	a := &tpv1.Attempt{At: timestamppb.New(now), StatusCode: int32(res.Status), LatencySeconds: res.Latency.Seconds()}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	return a, res.Err == nil, nil
}

// ErrUnknownReceiver reports a receiver the routing file does not define.
var ErrUnknownReceiver = errors.New("unknown receiver")
