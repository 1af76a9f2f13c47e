package chaos

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// check compares what the system holds with the ledger, polling each part until it matches or
// deadline passes (the services are eventually consistent), and records the result in rep.
func check(t testing.TB, s *System, js jetstream.JetStream, l *Ledger, rep *Report, deadline time.Time) {
	t.Helper()
	acked := l.Acked()
	rep.Tickets = len(acked)
	for _, tk := range acked {
		rep.Acked += len(tk.Events)
	}
	rep.Unacked = len(l.Unacked())
	rep.Answers = l.Answers()
	rep.Repeats = l.Repeats
	rep.NotOffered = l.NotOffered
	for _, r := range l.Refused {
		rep.problem("ingest refused a valid request: %s", r)
	}
	if rep.Unacked > 0 {
		rep.problem("%d tickets were never acknowledged, though retried until the end of the settle time", rep.Unacked)
	}

	poll(deadline, func() []string { return replicaMismatches(js) }, func(m []string) {
		for _, p := range m {
			rep.problem("nats: %s", p)
		}
	})
	stored := checkTickets(js, acked, rep, deadline)
	// The KPIs are those of the events in TICKETS: the acknowledged tickets, and any ticket that
	// was stored whole though its answer was lost. A ticket stored in part and never
	// acknowledged (only when retries ran out, itself a problem) leaves its agent's and team's
	// figures unknowable: they are not compared.
	counted := acked
	skip := map[string]bool{}
	unacked := l.Unacked()
	if stored == nil && len(unacked) > 0 {
		// Which of them TICKETS holds is unknown: no figure can be expected.
		for _, a := range Agents {
			skip["agent "+a] = true
		}
		for _, g := range Teams {
			skip["team "+g] = true
		}
		unacked = nil
	}
	for _, tk := range unacked {
		n := 0
		for _, id := range tk.EventIDs() {
			if stored[id] {
				n++
			}
		}
		switch n {
		case len(tk.Events):
			counted = append(counted, tk)
		case 0:
		default:
			skip["agent "+tk.Agent], skip["team "+tk.Team] = true, true
		}
	}
	if len(skip) > 0 {
		rep.problem("KPIs of %d agents and teams not compared: tickets of theirs are unacknowledged and in TICKETS in part, or TICKETS could not be read", len(skip))
	}
	poll(deadline, func() []string { return kpiMismatches(s, t, counted, skip) }, func(m []string) {
		for _, p := range m {
			rep.problem("kpi: %s", p)
		}
	})
	rep.KPIChecked = len(Agents) + len(Teams) - len(skip)
	var escalations map[string][]*tpv1.Escalation
	poll(deadline, func() []string {
		var m []string
		escalations, m = escalationMismatches(s, t, acked)
		return m
	}, func(m []string) {
		for _, p := range m {
			rep.problem("escalation: %s", p)
		}
	})
	rep.Escalations = len(escalations)
	poll(deadline, func() []string { return notifyMismatches(s, js, rep) }, func(m []string) {
		for _, p := range m {
			rep.problem("notify: %s", p)
		}
		rep.problem("notify: its delivery log says %s", deliveryStatuses(s, t))
		groups, err := stuckGroups(context.Background(), s.Topo.RedisURL())
		if err != nil {
			groups = err.Error()
		}
		rep.problem("notify: its groups in Redis: %s", groups)
	})
}

// poll runs f until it reports nothing or deadline passes, then hands what it last reported to
// fail.
func poll(deadline time.Time, f func() []string, fail func([]string)) {
	for {
		m := f()
		if len(m) == 0 {
			return
		}
		if time.Now().After(deadline) {
			fail(m)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// readStream reads every message of stream (headers only) with an ordered consumer.
func readStream(js jetstream.JetStream, stream string, headersOnly bool) ([]jetstream.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: headersOnly})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	var out []jetstream.Msg
	for {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out = append(out, m)
			if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read %s: no message after %d of %d", stream, len(out), info.State.Msgs)
		}
	}
}

// checkTickets counts, for every acknowledged event, its messages in TICKETS: none is lost, one
// more is doubled.
// It returns the event ids TICKETS holds.
func checkTickets(js jetstream.JetStream, acked []Ticket, rep *Report, deadline time.Time) map[string]bool {
	var msgs []jetstream.Msg
	var err error
	// A cluster may still be electing a leader for a stream or its consumer: read again.
	for msgs, err = readStream(js, "TICKETS", true); err != nil && time.Now().Before(deadline); msgs, err = readStream(js, "TICKETS", true) {
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		rep.problem("%v", err)
		return nil
	}
	rep.StreamRead = true
	count := map[string]int{}
	for _, m := range msgs {
		// Nats-Msg-Id is <tenant>/<source>/<event id>.
		parts := strings.SplitN(m.Headers().Get(jetstream.MsgIDHeader), "/", 3)
		if len(parts) == 3 {
			count[parts[2]]++
		}
	}
	rep.StreamMsgs = len(msgs)
	for _, tk := range acked {
		for _, id := range tk.EventIDs() {
			switch n := count[id]; {
			case n == 0:
				rep.Lost++
				if rep.Lost <= 5 {
					rep.problem("acknowledged event %q is not in TICKETS", id)
				}
			case n > 1:
				rep.Doubled++
				if rep.Doubled <= 5 {
					rep.problem("acknowledged event %q is %d times in TICKETS", id, n)
				}
			}
		}
	}
	stored := make(map[string]bool, len(count))
	for id := range count {
		stored[id] = true
	}
	return stored
}

// figures are the KPIs the ledger implies for one agent or team, by the definitions in
// docs/kpis.md applied to the load's ticket shape.
type figures struct {
	firstCount, resCount, assigned, csatCount, met, breached int64
	firstSum, resSum, scoreSum                               float64
}

func expected(acked []Ticket, match func(Ticket) bool) figures {
	var f figures
	for _, tk := range acked {
		if !match(tk) {
			continue
		}
		f.assigned++
		if !tk.Answered {
			f.breached++
			continue
		}
		f.firstCount++
		f.firstSum += tk.Reply.Seconds()
		f.resCount++
		f.resSum += tk.Solve.Seconds()
		f.csatCount++
		f.scoreSum += float64(tk.Score)
		f.met++
	}
	return f
}

func compare(who string, k *tpv1.Kpis, f figures) []string {
	var out []string
	ints := []struct {
		name      string
		got, want int64
	}{
		{"first_response.count", k.GetFirstResponse().GetCount(), f.firstCount},
		{"resolution.count", k.GetResolution().GetCount(), f.resCount},
		{"resolutions", k.GetResolutions(), f.resCount},
		{"assigned", k.GetAssigned(), f.assigned},
		{"csat_count", k.GetCsatCount(), f.csatCount},
		{"sla_first_response_met", k.GetSlaFirstResponseMet(), f.met},
		{"sla_first_response_breached", k.GetSlaFirstResponseBreached(), f.breached},
	}
	for _, c := range ints {
		if c.got != c.want {
			out = append(out, fmt.Sprintf("%s %s = %d, the ledger says %d", who, c.name, c.got, c.want))
		}
	}
	floats := []struct {
		name      string
		got, want float64
	}{
		{"first_response.sum_seconds", k.GetFirstResponse().GetSumSeconds(), f.firstSum},
		{"resolution.sum_seconds", k.GetResolution().GetSumSeconds(), f.resSum},
		{"csat_mean", k.GetCsatMean(), mean(f.scoreSum, f.csatCount)},
	}
	for _, c := range floats {
		if math.Abs(c.got-c.want) > 1e-6*math.Max(1, math.Abs(c.want)) {
			out = append(out, fmt.Sprintf("%s %s = %v, the ledger says %v", who, c.name, c.got, c.want))
		}
	}
	return out
}

func mean(sum float64, n int64) float64 {
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// kpiMismatches asks kpi for every agent's and team's KPIs over a window holding the whole run.
// Those named in skip ("agent <id>", "team <id>") are left out.
func kpiMismatches(s *System, t testing.TB, acked []Ticket, skip map[string]bool) []string {
	c := tpv1.NewKpiServiceClient(s.Dial(t, s.KPI))
	now := time.Now()
	w := &tpv1.Window{Kind: &tpv1.Window_Range{Range: &tpv1.TimeRange{
		From: timestamppb.New(now.Add(-24 * time.Hour).Truncate(time.Hour)), To: timestamppb.New(now.Add(time.Hour).Truncate(time.Hour))}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	for _, a := range Agents {
		if skip["agent "+a] {
			continue
		}
		resp, err := c.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: tenant, AgentId: a, Window: w})
		if err != nil {
			out = append(out, fmt.Sprintf("agent %q: %v", a, err))
			continue
		}
		out = append(out, compare(fmt.Sprintf("agent %q", a), resp.GetAgent().GetKpis(), expected(acked, func(tk Ticket) bool { return tk.Agent == a }))...)
	}
	for _, g := range Teams {
		if skip["team "+g] {
			continue
		}
		resp, err := c.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: tenant, TeamId: g, Window: w})
		if err != nil {
			out = append(out, fmt.Sprintf("team %q: %v", g, err))
			continue
		}
		out = append(out, compare(fmt.Sprintf("team %q", g), resp.GetKpis(), expected(acked, func(tk Ticket) bool { return tk.Team == g }))...)
	}
	return out
}

// escalationMismatches lists every escalation of the tenant and compares them with the SLA rule
// applied to the ledger: one escalation for each unanswered ticket, none for the others.
func escalationMismatches(s *System, t testing.TB, acked []Ticket) (map[string][]*tpv1.Escalation, []string) {
	c := tpv1.NewEscalationServiceClient(s.Dial(t, s.Esc))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	byTicket := map[string][]*tpv1.Escalation{}
	token := ""
	for {
		resp, err := c.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: tenant, PageSize: 500, PageToken: token})
		if err != nil {
			return nil, []string{fmt.Sprintf("ListEscalations: %v", err)}
		}
		for _, e := range resp.GetEscalations() {
			byTicket[e.GetSubjectId()] = append(byTicket[e.GetSubjectId()], e)
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	var out []string
	known := map[string]bool{}
	for _, tk := range acked {
		known[tk.ID] = true
		got := byTicket[tk.ID]
		switch {
		case tk.Answered && len(got) > 0:
			out = append(out, fmt.Sprintf("answered ticket %q has %d escalations (%s)", tk.ID, len(got), got[0].GetRule()))
		case !tk.Answered && len(got) != 1:
			out = append(out, fmt.Sprintf("unanswered ticket %q has %d escalations, want 1", tk.ID, len(got)))
		case !tk.Answered && got[0].GetLabels()["agent"] != tk.Agent:
			out = append(out, fmt.Sprintf("ticket %q escalation's agent label %q, want %q", tk.ID, got[0].GetLabels()["agent"], tk.Agent))
		}
	}
	for id, got := range byTicket {
		if !known[id] {
			out = append(out, fmt.Sprintf("%d escalations of %q, which the ledger does not have", len(got), id))
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
	}
	return byTicket, out
}

// notifyMismatches reads every change escalation published to ESCALATIONS and the dead letters,
// and checks that each change reached the receiver in exactly one message, or was dead-lettered.
func notifyMismatches(s *System, js jetstream.JetStream, rep *Report) []string {
	msgs, err := readStream(js, "ESCALATIONS", false)
	if err != nil {
		return []string{err.Error()}
	}
	published := map[string]*tpv1.EscalationChange{}
	triggered := map[string]int{}
	for _, m := range msgs {
		var c tpv1.EscalationChange
		if err := proto.Unmarshal(m.Data(), &c); err != nil {
			return []string{fmt.Sprintf("ESCALATIONS message %s: %v", m.Subject(), err)}
		}
		published[changeKey(c.GetEscalation().GetId(), c.GetSequence())] = &c
		if c.GetKind() == tpv1.ChangeKind_CHANGE_KIND_TRIGGERED {
			triggered[c.GetEscalation().GetSubjectId()]++
		}
	}
	letters, err := readStream(js, "DEADLETTER", false)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return []string{err.Error()}
	}
	rep.DeadLetters = rep.DeadLetters[:0]
	for _, m := range letters {
		rep.DeadLetters = append(rep.DeadLetters, fmt.Sprintf("%s: %s %s", m.Subject(), m.Headers().Get("Ticketpulse-Reason"), m.Headers().Get("Ticketpulse-Error")))
	}
	carried, _ := s.Receiver.Carried()
	rep.Changes, rep.Notified, rep.NotifiedTwice, rep.DeadLettered = len(published), 0, 0, 0
	var out []string
	for k, c := range published {
		switch n := len(carried[k]); {
		case n == 1:
			rep.Notified++
		case n > 1:
			rep.NotifiedTwice++
			out = append(out, fmt.Sprintf("change %s (%s) reached the receiver in %d messages: %v", k, c.GetKind(), n, carried[k]))
		case deadLettered(letters, c.GetEscalation().GetId()):
			rep.DeadLettered++
		default:
			out = append(out, fmt.Sprintf("change %s (%s of ticket %q) neither delivered nor dead-lettered", k, c.GetKind(), c.GetEscalation().GetSubjectId()))
		}
	}
	for id, n := range triggered {
		if n > 1 {
			out = append(out, fmt.Sprintf("ticket %q triggered %d times in ESCALATIONS", id, n))
		}
	}
	for k := range carried {
		if published[k] == nil {
			out = append(out, fmt.Sprintf("the receiver got change %s, which ESCALATIONS does not hold", k))
		}
	}
	if bad := s.Receiver.bad(); len(bad) > 0 {
		out = append(out, bad...)
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
	}
	return out
}

func deadLettered(letters []jetstream.Msg, escalation string) bool {
	for _, m := range letters {
		if strings.HasPrefix(m.Subject(), "deadletter.notify.") && strings.Contains(string(m.Data()), escalation) {
			return true
		}
	}
	return false
}

func (r *Receiver) bad() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.Bad...)
}

// replicaMismatches lists every replica of the streams that is not current with its leader: on
// a cluster, a node that came back from a fault must catch up, not only the quorum answer.
func replicaMismatches(js jetstream.JetStream) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for _, name := range []string{"TICKETS", "KPI", "ESCALATIONS", "DEADLETTER"} {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(ctx)
		}
		if err != nil {
			out = append(out, fmt.Sprintf("stream %s: %v", name, err))
			continue
		}
		if info.Cluster == nil {
			continue
		}
		if info.Cluster.Leader == "" {
			out = append(out, fmt.Sprintf("stream %s has no leader", name))
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				out = append(out, fmt.Sprintf("stream %s: replica on %s not current (offline %v, lag %d, last seen %s ago)", name, r.Name, r.Offline, r.Lag, r.Active))
			}
		}
	}
	return out
}

// deliveryStatuses counts notify's deliveries by status, and names the last pending ones: whether
// a change not received is waiting for a retry or was forgotten.
func deliveryStatuses(s *System, t testing.TB) string {
	c := tpv1.NewNotificationServiceClient(s.Dial(t, s.Notify))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	count := map[string]int{}
	var pending []string
	token := ""
	for page := 0; page < 100; page++ {
		resp, err := c.ListDeliveries(ctx, &tpv1.ListDeliveriesRequest{Tenant: tenant, PageSize: 500, PageToken: token})
		if err != nil {
			return fmt.Sprintf("ListDeliveries: %v", err)
		}
		for _, d := range resp.GetDeliveries() {
			count[d.GetStatus().String()]++
			if d.GetStatus() == tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING && len(pending) < 3 {
				pending = append(pending, fmt.Sprintf("%s (%d changes, updated %s)", d.GetId(), len(d.GetChanges()), d.GetUpdatedAt().AsTime().Format(time.TimeOnly)))
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return fmt.Sprintf("%v; pending: %v", count, pending)
}
