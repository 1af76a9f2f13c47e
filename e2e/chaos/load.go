package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Agents and teams of the load: helpdesk ids as they come, with spaces, slashes, quotes, markup
// and non-ASCII, which every key, subject and message must carry unchanged.
var (
	Agents = []string{"ana", "bo b", "zoë/ü", `q"uote`, "<script>alert(1)</script>", "李.*>"}
	Teams  = []string{"support", `équipe <b>"x"</b>/1`}
)

// Shape of the load's tickets: answered ones get a reply within the first-response target, are
// solved and rated; every UnansweredEvery-th one is never answered and breached its
// first-response target before it arrives (the customer wrote again since), so escalation must
// raise it exactly once and kpi count one breach.
const (
	UnansweredEvery  = 5
	FirstResponseSLA = time.Hour
	answeredAge      = 30 * time.Minute
	unansweredAge    = 2 * time.Hour
)

// Ticket is one ticket of the load and the events that make it, posted in one request.
type Ticket struct {
	N        int
	ID       string
	Agent    string
	Team     string
	Answered bool
	// Reply and Solve are the first response and resolution times; Score the rating.
	Reply, Solve time.Duration
	Score        int
	Events       []map[string]any
}

// EventIDs are the ids of the ticket's events.
func (t Ticket) EventIDs() []string {
	ids := make([]string, len(t.Events))
	for i, e := range t.Events {
		ids[i] = e["id"].(string)
	}
	return ids
}

// NewTicket is the n-th ticket of a load whose tickets are made at now (each ticket's times are
// relative to when it is made, so they stay within ingest's window for any run length).
func NewTicket(n int, now time.Time, rnd *rand.Rand) Ticket {
	t := Ticket{N: n, ID: fmt.Sprintf("T %d/ü\"<i>", n), Agent: Agents[n%len(Agents)], Team: Teams[n%len(Teams)],
		Answered: n%UnansweredEvery != 0}
	now = now.UTC().Truncate(time.Second)
	ev := func(suffix, typ string, at time.Time, actor, kind string, extra ...any) map[string]any {
		m := map[string]any{"id": fmt.Sprintf("e%d-%s ü/\"", n, suffix), "ticket_id": t.ID, "type": typ,
			"occurred_at": at.Format(time.RFC3339), "actor": map[string]any{"id": actor, "kind": kind}}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	if !t.Answered {
		// The customer writes again after the deadline: that event is how kpi learns of the breach
		// (docs/kpis.md, SLA), while escalation's timer sees it in real time.
		created := now.Add(-unansweredAge)
		t.Events = []map[string]any{
			ev("c", "ticket_created", created, "cust", "customer",
				"assignee_id", t.Agent, "team_id", t.Team, "priority", "normal", "status", "new", "channel", "email"),
			ev("m", "customer_message", now.Add(-10*time.Minute), "cust", "customer"),
		}
		rnd.Shuffle(len(t.Events), func(i, j int) { t.Events[i], t.Events[j] = t.Events[j], t.Events[i] })
		return t
	}
	created := now.Add(-answeredAge)
	// Whole minutes, as helpdesk exports give them: replies, solves and ratings share instants.
	t.Reply = time.Duration(1+rnd.IntN(20)) * time.Minute
	t.Solve = t.Reply + time.Duration(rnd.IntN(5))*time.Minute
	t.Score = 1 + rnd.IntN(5)
	rated := t.Solve + time.Duration(rnd.IntN(2))*time.Minute
	t.Events = []map[string]any{
		ev("c", "ticket_created", created, "cust", "customer", "assignee_id", t.Agent, "team_id", t.Team,
			"priority", "normal", "status", "new", "channel", "email"),
		ev("r", "agent_message", created.Add(t.Reply), t.Agent, "agent", "assignee_id", t.Agent, "team_id", t.Team, "public", true),
		ev("s", "status_changed", created.Add(t.Solve), t.Agent, "agent", "assignee_id", t.Agent, "team_id", t.Team, "status", "solved"),
		ev("q", "satisfaction_rated", created.Add(rated), "cust", "customer", "satisfaction", map[string]any{"score": t.Score}),
	}
	// Helpdesks deliver out of order.
	rnd.Shuffle(len(t.Events), func(i, j int) { t.Events[i], t.Events[j] = t.Events[j], t.Events[i] })
	return t
}

// ticketEvents is how many events NewTicket(n, ...) has.
func ticketEvents(n int) int {
	if n%UnansweredEvery == 0 {
		return 2
	}
	return 4
}

// Ledger is what the load knows independently of the system: every ticket it made and when
// ingest acknowledged it (2xx).
type Ledger struct {
	mu       sync.Mutex
	tickets  []Ticket
	acked    map[int]time.Time
	ackTimes []time.Time
	statuses map[string]int
	// Refused are answers that mean the request itself was wrong (4xx other than 408/429): never
	// expected from this load, each one a finding.
	Refused []string
	// Repeats counts acknowledged tickets posted a second time, which must change nothing.
	Repeats int
	// NotOffered counts tickets the load could not even queue (every sender busy): not in the
	// ledger's tickets, so they are neither expected nor lost.
	NotOffered int
}

func newLedger() *Ledger {
	return &Ledger{acked: map[int]time.Time{}, statuses: map[string]int{}}
}

func (l *Ledger) add(t Ticket) {
	l.mu.Lock()
	l.tickets = append(l.tickets, t)
	l.mu.Unlock()
}

func (l *Ledger) ack(n int, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.acked[n]; !ok {
		l.acked[n] = at
		l.ackTimes = append(l.ackTimes, at)
	}
}

func (l *Ledger) answer(status string) {
	l.mu.Lock()
	l.statuses[status]++
	l.mu.Unlock()
}

// Acked is every acknowledged ticket, in the order made.
func (l *Ledger) Acked() []Ticket {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Ticket
	for _, t := range l.tickets {
		if _, ok := l.acked[t.N]; ok {
			out = append(out, t)
		}
	}
	return out
}

// Unacked is every ticket made but never acknowledged.
func (l *Ledger) Unacked() []Ticket {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Ticket
	for _, t := range l.tickets {
		if _, ok := l.acked[t.N]; !ok {
			out = append(out, t)
		}
	}
	return out
}

// FirstAckAfter is the first acknowledgement at or after t, and whether there was one.
func (l *Ledger) FirstAckAfter(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	times := append([]time.Time(nil), l.ackTimes...)
	l.mu.Unlock()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	i := sort.Search(len(times), func(i int) bool { return !times[i].Before(t) })
	if i == len(times) {
		return time.Time{}, false
	}
	return times[i], true
}

// Answers counts ingest's answers by status ("202", "503", "error: timeout", ...).
func (l *Ledger) Answers() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.statuses))
	for k, v := range l.statuses {
		out[k] = v
	}
	return out
}

// Load posts tickets to ingest's events API at a fixed rate of events per second, each ticket
// retried until acknowledged, as a helpdesk retries a webhook.
type Load struct {
	URL    string // http://host:port/v1/tenants/<tenant>/events
	Key    string
	Rate   int // events per second
	Seed   uint64
	Ledger *Ledger

	senders int
	client  *http.Client
}

// NewLoad is a load of rate events per second on ingest at addr for tenant, with key.
func NewLoad(addr, tenant, key string, rate int, seed uint64) *Load {
	return &Load{URL: "http://" + addr + "/v1/tenants/" + tenant + "/events", Key: key, Rate: rate, Seed: seed,
		Ledger: newLedger(), senders: 32, client: &http.Client{Timeout: 10 * time.Second}}
}

// Run makes tickets until gen ends, and retries each until it is acknowledged or retry ends;
// it returns once every sender stopped.
func (l *Load) Run(gen, retry context.Context) {
	queue := make(chan Ticket, 4096)
	var wg sync.WaitGroup
	for i := 0; i < l.senders; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(l.Seed, uint64(i)+1))
			for t := range queue {
				l.deliver(retry, t, rnd)
			}
		}(i)
	}
	rnd := rand.New(rand.NewPCG(l.Seed, 0))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	credit, n := 0.0, 0
	last := time.Now()
generate:
	for {
		select {
		case <-gen.Done():
			break generate
		case now := <-tick.C:
			credit += float64(l.Rate) * now.Sub(last).Seconds()
			last = now
			for credit >= float64(ticketEvents(n)) {
				credit -= float64(ticketEvents(n))
				t := NewTicket(n, now, rnd)
				n++
				select {
				case queue <- t:
					l.Ledger.add(t)
				default:
					l.Ledger.mu.Lock()
					l.Ledger.NotOffered++
					l.Ledger.mu.Unlock()
				}
			}
		}
	}
	close(queue)
	wg.Wait()
}

func (l *Load) deliver(ctx context.Context, t Ticket, rnd *rand.Rand) {
	body, err := json.Marshal(t.Events)
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		status, wait := l.post(ctx, body)
		if status/100 == 2 {
			l.Ledger.ack(t.N, time.Now())
			// A helpdesk that never saw the answer sends it all again: it must change nothing.
			if rnd.IntN(20) == 0 {
				if s, _ := l.post(ctx, body); s/100 == 2 {
					l.Ledger.mu.Lock()
					l.Ledger.Repeats++
					l.Ledger.mu.Unlock()
				}
			}
			return
		}
		if status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
			l.Ledger.mu.Lock()
			l.Ledger.Refused = append(l.Ledger.Refused, fmt.Sprintf("ticket %q: %d", t.ID, status))
			l.Ledger.mu.Unlock()
			return
		}
		if wait <= 0 {
			wait = backoff + time.Duration(rnd.Int64N(int64(backoff)))
			backoff = min(2*backoff, time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// post sends one request and returns its status (0 for no answer) and the Retry-After asked
// for, at most a second.
func (l *Load) post(ctx context.Context, body []byte) (int, time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL, bytes.NewReader(body))
	if err != nil {
		panic(err) // the URL is ours
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.Key)
	resp, err := l.client.Do(req)
	if err != nil {
		l.Ledger.answer("no answer")
		return 0, 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	l.Ledger.answer(strconv.Itoa(resp.StatusCode))
	var wait time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		wait = min(time.Duration(s)*time.Second, time.Second)
	}
	return resp.StatusCode, wait
}
