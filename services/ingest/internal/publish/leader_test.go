package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// silentTickets stands in for a stream leader that went away: it takes every message on the
// TICKETS subjects and answers none. seen receives each message that asks for a reply.
func silentTickets(t *testing.T, url string) (seen <-chan *nats.Msg) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ch := make(chan *nats.Msg, 16)
	if _, err := nc.Subscribe("tickets.>", func(m *nats.Msg) {
		if m.Reply != "" {
			ch <- m
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// publishUnanswered publishes evs with a 10 s deadline and returns once the request is waiting
// for a reply that will not come; result yields the outcome and how long Publish took.
func publishUnanswered(t *testing.T, p *Publisher, seen <-chan *nats.Msg, evs []*ticketpulsev1.TicketEvent) (result func() (error, time.Duration)) {
	t.Helper()
	type outcome struct {
		err  error
		took time.Duration
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := p.Publish(ctx, evs)
		done <- outcome{err, time.Since(start)}
	}()
	select {
	case <-seen:
	case o := <-done:
		t.Fatalf("Publish returned %v before its request was sent", o.err)
	case <-time.After(5 * time.Second):
		t.Fatal("the request was not sent within 5 s")
	}
	return func() (error, time.Duration) {
		select {
		case o := <-done:
			return o.err, o.took
		case <-time.After(8 * time.Second):
			t.Fatal("Publish still waiting 8 s after the wait should have ended")
			return nil, 0
		}
	}
}

func TestPublishEndsWaitsAtLeaderElection(t *testing.T) {
	for _, tc := range []struct {
		name string
		evs  []*ticketpulsev1.TicketEvent
		want string
	}{
		{"atomic batch", events(0, 3), "commit atomic batch of 3 events on tickets.acme.ticket_created: the TICKETS stream elected a new leader"},
		{"single event", events(0, 1), "1 of 1 events unacknowledged: the TICKETS stream elected a new leader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := testenv.NATS(t)
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			p, err := New(nc, Options{AckTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			seen := silentTickets(t, url)
			result := publishUnanswered(t, p, seen, tc.evs)
			// What the new leader's server sends: any message on the subject will do.
			other, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.Publish(LeaderElectedSubject, []byte(`{"type":"io.nats.jetstream.advisory.v1.stream_leader_elected","stream":"TICKETS"}`)); err != nil {
				t.Fatal(err)
			}
			err, took := result()
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Publish: %v, want ErrUnavailable with %q", err, tc.want)
			}
			if took > 5*time.Second {
				t.Errorf("Publish took %v after the leader change, want well within its 10 s deadline", took)
			}
			// The wait that ended was the one in flight: a new request waits again.
			later := publishUnanswered(t, p, seen, events(10, 2))
			p.markLost("end of test")
			if err, _ := later(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "end of test") {
				t.Fatalf("next Publish: %v, want it ended by the next leader change", err)
			}
		})
	}
}

func TestPublishEndsWaitsAtDisconnect(t *testing.T) {
	srv, url := testenv.NATS(t)
	nc, err := nats.Connect(url, nats.ReconnectWait(10*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p, err := New(nc, Options{AckTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	seen := silentTickets(t, url)
	result := publishUnanswered(t, p, seen, events(0, 4))
	cid, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	err, took := result()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "the nats connection dropped") {
		t.Fatalf("Publish: %v, want ErrUnavailable for the dropped connection", err)
	}
	if took > 5*time.Second {
		t.Errorf("Publish took %v after the disconnect, want well within its 10 s deadline", took)
	}
}

// attempt is one Publish of a request.
type attempt struct {
	start, end time.Time
	ids        []string
	err        error
}

func TestPublishRecoversWhenTheTicketsLeaderStops(t *testing.T) {
	const publishTimeout = 5 * time.Second
	c := testenv.NATSCluster(t, 3)
	admin, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := stream.Ensure(ctx, js, stream.Tickets(time.Hour, 3))
	if err != nil {
		t.Fatal(err)
	}
	leader, err := c.WaitStreamLeader(stream.TicketsName, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// ingest on a server that stays: nothing tells it of the loss but the advisory.
	follower := (leader + 1) % c.Size()
	nc, err := nats.Connect(c.URLs()[follower], nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p, err := New(nc, Options{AckTimeout: publishTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	var (
		mu       sync.Mutex
		attempts []attempt
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Four posters send requests of 20 events one after the other, each again until it is
	// acknowledged, as a helpdesk retries a 503.
	for poster := range 4 {
		wg.Go(func() {
			for req := 0; ; req++ {
				evs := make([]*ticketpulsev1.TicketEvent, 20)
				for i := range evs {
					evs[i] = ev("acme", "generic", fmt.Sprintf("p%d/r%d/e%d", poster, req, i), ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED)
				}
				for {
					select {
					case <-stop:
						return
					default:
					}
					a := attempt{start: time.Now(), ids: msgIDs(evs)}
					pctx, cancel := context.WithTimeout(ctx, publishTimeout)
					_, a.err = p.Publish(pctx, evs)
					cancel()
					a.end = time.Now()
					mu.Lock()
					attempts = append(attempts, a)
					mu.Unlock()
					if a.err == nil {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(time.Second)
	stopped := time.Now()
	c.Stop(leader)
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()

	var acked []string
	var firstAck time.Duration = -1
	var failed int
	for _, a := range attempts {
		if a.err != nil {
			failed++
			t.Logf("refused after %v: %v", a.end.Sub(a.start).Round(time.Millisecond), a.err)
		} else {
			acked = append(acked, a.ids...)
			if a.start.After(stopped) && (firstAck < 0 || a.end.Sub(stopped) < firstAck) {
				firstAck = a.end.Sub(stopped)
			}
		}
		// The point of the test: no request waits for a leader that is gone. Those in flight at
		// the stop are answered once the new leader is known, well before publishTimeout.
		if took := a.end.Sub(a.start); took > publishTimeout/2 {
			t.Errorf("a request sent at %v from the stop took %v (%v), want well below -publish-timeout %v",
				a.start.Sub(stopped).Round(time.Millisecond), took.Round(time.Millisecond), a.err, publishTimeout)
		}
	}
	t.Logf("%d requests, %d refused, %d events acknowledged; first acknowledgement of a request sent after the stop %v after it (-1ns: none)",
		len(attempts), failed, len(acked), firstAck.Round(time.Millisecond))
	if firstAck < 0 || firstAck > publishTimeout/2 {
		t.Errorf("first acknowledgement of a request sent after the stop %v after it, want one well within %v", firstAck, publishTimeout)
	}

	// Every acknowledged event is in TICKETS once, and nothing is there twice.
	if _, err := c.WaitStreamLeader(stream.TicketsName, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The ordered consumer starts again after the last message it delivered when a fetch
	// fails (a cluster that just lost a node may not answer every one at once).
	deadline := time.Now().Add(30 * time.Second)
	for read := uint64(0); read < info.State.Msgs; {
		if time.Now().After(deadline) {
			t.Fatalf("read TICKETS: %d of %d messages after 30 s", read, info.State.Msgs)
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Logf("fetch: %v", err)
			continue
		}
		for m := range batch.Messages() {
			count[m.Headers().Get(jetstream.MsgIDHeader)]++
			read++
		}
		if batch.Error() != nil {
			t.Logf("fetch after %d of %d messages: %v", read, info.State.Msgs, batch.Error())
		}
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	for _, id := range acked {
		if count[id] != 1 {
			t.Errorf("acknowledged event %s stored %d times", id, count[id])
		}
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
}
