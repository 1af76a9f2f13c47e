package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// backlogged creates TICKETS (with maxBytes, 0 for none) and kpi's durable consumer on it with
// nobody consuming, and stores n events of size bytes each that the consumer has not processed.
func backlogged(t *testing.T, url string, maxBytes int64, n, size int) jetstream.Consumer {
	t.Helper()
	ctx := context.Background()
	js := jetStream(t, url)
	cfg := stream.Tickets(time.Hour, 1)
	if maxBytes > 0 {
		cfg.MaxBytes = maxBytes
	}
	s, err := stream.Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: stream.KPIDurable, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: stream.TicketsFilter,
	})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, size)
	for i := range n {
		if _, err := js.PublishAsync(stream.TicketSubject("other", "ticket_created"), payload); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("backlog not stored in 10s")
	}
	if got := msgCount(t, s); got != uint64(n) {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
	return cons
}

// admissionTest starts ingest bounding kpi's backlog at maxBacklog (soft mark at half), with
// the state read at start only (so every request of a test sees the same reading). The tenants
// flood and quiet may send 10 events/s in bursts of 25.
func admissionTest(maxBacklog int64) func(*Config, *Deps) {
	return func(c *Config, _ *Deps) {
		c.MaxBacklog = maxBacklog
		c.AdmissionRefresh = time.Hour
	}
}

const overloadedBacklog = `{"error":"overloaded","code":"overloaded","reason":"backlog: more events wait to be processed than ingest takes on; nothing was stored, send again after Retry-After"}`

func batchOf(prefix string, n int) string {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("%s-%d", prefix, i), "customer_message", "")
	}
	return "[" + strings.Join(evs, ",") + "]"
}

// Below the soft mark nobody is held back; between the soft mark and the bound a tenant sending
// more than its shrunk share gets 429 while a quiet tenant gets in; at the bound everyone gets
// 503. A refused request stores nothing.
func TestAdmissionByBacklog(t *testing.T) {
	const bound = 1000
	type post struct {
		tenant string
		events int
		want   int
	}
	tests := []struct {
		name    string
		backlog int
		posts   []post
	}{
		{
			name:    "below the soft mark",
			backlog: 400,
			posts: []post{{"flood", 5, 202}, {"flood", 5, 202}, {"flood", 5, 202}, {"flood", 5, 202},
				{"flood", 5, 202}, {"quiet", 1, 202}},
		},
		{
			// Factor (1000-900)/(1000-500) = 0.2: 2 events/s, bursts of 25.
			name:    "between the soft mark and the bound",
			backlog: 900,
			posts: []post{{"flood", 5, 202}, {"flood", 5, 202}, {"flood", 5, 202}, {"flood", 5, 202},
				{"flood", 5, 202}, {"flood", 5, 429}, {"quiet", 1, 202}},
		},
		{
			name:    "at the bound",
			backlog: bound,
			posts:   []post{{"flood", 5, 503}, {"quiet", 1, 503}},
		},
		{
			// 995 stored + 5 would reach the bound: the request itself counts.
			name:    "a request that would reach the bound",
			backlog: bound - 5,
			posts:   []post{{"flood", 5, 503}, {"quiet", 1, 202}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := testenv.NATS(t)
			backlogged(t, url, 0, tt.backlog, 10)
			r := start(t, url, admissionTest(bound))
			s := tickets(t, url)
			stored := uint64(tt.backlog)
			for i, p := range tt.posts {
				got := r.post(t, p.tenant, batchOf(fmt.Sprintf("%s-%d", p.tenant, i), p.events))
				if got.status != p.want {
					t.Fatalf("post %d (%s, %d events): %d %s, want %d", i, p.tenant, p.events, got.status, got.body, p.want)
				}
				switch p.want {
				case http.StatusAccepted:
					stored += uint64(p.events)
				case http.StatusServiceUnavailable:
					wantJSON(t, got, p.want, overloadedBacklog)
					// Nobody drains this backlog: the longest wait.
					if ra := got.header.Get("Retry-After"); ra != "60" {
						t.Errorf("Retry-After %q, want 60", ra)
					}
				case http.StatusTooManyRequests:
					ra, err := strconv.Atoi(got.header.Get("Retry-After"))
					// 5 events at 2 events/s: 2.5 s less what refilled since the burst.
					if err != nil || ra < 1 || ra > 3 {
						t.Fatalf("Retry-After %q, want 1 to 3 s", got.header.Get("Retry-After"))
					}
					wantJSON(t, got, p.want, fmt.Sprintf(`{"error":"rate limited","reason":"the pipeline is busy, so tenant %s may send 20%% of its 10 events/s now; retry after %d s"}`, p.tenant, ra))
				}
				if n := msgCount(t, s); n != stored {
					t.Fatalf("after post %d the stream holds %d messages, want %d", i, n, stored)
				}
			}
			metrics := do(t, http.MethodGet, r.AdminURL("/metrics"), "", "", nil).body
			if want := fmt.Sprintf("ingest_admission_backlog %d\n", tt.backlog); !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		})
	}
}

// Once kpi works its backlog off, ingest takes events again; the refusals are counted.
func TestAdmissionRecoversWhenTheBacklogDrains(t *testing.T) {
	_, url := testenv.NATS(t)
	const bound = 100
	cons := backlogged(t, url, 0, bound, 10)
	r := start(t, url, func(c *Config, _ *Deps) {
		c.MaxBacklog = bound
		c.AdmissionRefresh = 20 * time.Millisecond
	})
	s := tickets(t, url)
	got := r.post(t, "acme", batchOf("d", 1))
	wantJSON(t, got, http.StatusServiceUnavailable, overloadedBacklog)
	if n := msgCount(t, s); n != bound {
		t.Fatalf("stream holds %d messages after a refusal, want %d", n, bound)
	}

	batch, err := cons.Fetch(bound, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(context.Background()); err != nil {
			t.Fatal(err)
		}
		acked++
	}
	if acked != bound {
		t.Fatalf("acknowledged %d messages, want %d", acked, bound)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = r.post(t, "acme", batchOf("d", 1))
		if got.status == http.StatusAccepted {
			break
		}
		if got.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the backlog drained: %d %s, want 202 within 5 s", got.status, got.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantJSON(t, got, http.StatusAccepted, `{"accepted":["d-0"],"duplicates":0}`)
	metrics := do(t, http.MethodGet, r.AdminURL("/metrics"), "", "", nil).body
	for _, want := range []string{
		`ingest_admission_rejected_total{reason="backlog"}`,
		`ingest_admission_rejected_total{reason="stream_full"} 0`,
		`ingest_admission_rejected_total{reason="tenant_share"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// A reading after the drain shows it: 0, or 1 once it saw the event just accepted (nobody
	// consumes it).
	gauge := regexp.MustCompile(`(?m)^ingest_admission_backlog [01]$`)
	for deadline := time.Now().Add(5 * time.Second); !gauge.MatchString(metrics); {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no backlog gauge of 0 or 1 after 5 s:\n%s", regexp.MustCompile(`(?m)^ingest_admission.*$`).FindAllString(metrics, -1))
		}
		time.Sleep(20 * time.Millisecond)
		metrics = do(t, http.MethodGet, r.AdminURL("/metrics"), "", "", nil).body
	}
}

// A TICKETS stream near its size limit refuses events before JetStream has to; one that is full
// with the fill check off refuses them through JetStream (discard new), and old events stay.
func TestAdmissionByStreamFill(t *testing.T) {
	const limit = 64 << 10
	tests := []struct {
		name string
		fill float64
		// stored is how many 1000-byte events are in the stream when ingest starts.
		stored int
		// fillUp adds small messages until the stream refuses one.
		fillUp   bool
		wantBody string
		wantRA   string
	}{
		{
			name:     "near full",
			fill:     0.5,
			stored:   40,
			wantBody: `{"error":"overloaded","code":"overloaded","reason":"stream_full: the event log is at its size limit; nothing was stored, send again after Retry-After"}`,
			wantRA:   "60",
		},
		{
			name:     "full, fill not checked",
			fill:     0,
			stored:   64,
			fillUp:   true,
			wantBody: `{"error":"events not stored","reason":"the event stream did not acknowledge every event; sending the same request again is safe"}`,
			wantRA:   "2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := testenv.NATS(t)
			backlogged(t, url, limit, 0, 0)
			js := jetStream(t, url)
			payload := make([]byte, 1000)
			for range tt.stored {
				if _, err := js.Publish(context.Background(), stream.TicketSubject("other", "ticket_created"), payload); err != nil {
					break
				}
			}
			// Small messages fill what is left, so not even one event fits.
			for i := 0; tt.fillUp && i < 1000; i++ {
				if _, err := js.Publish(context.Background(), stream.TicketSubject("other", "ticket_created"), nil); err != nil {
					break
				}
			}
			s := tickets(t, url)
			before := msgCount(t, s)
			r := start(t, url, func(c *Config, _ *Deps) {
				c.TicketsMaxBytes = limit
				c.MaxStreamFill = tt.fill
				c.AdmissionRefresh = time.Hour
			})
			got := r.post(t, "acme", batchOf("f", 5))
			wantJSON(t, got, http.StatusServiceUnavailable, tt.wantBody)
			if ra := got.header.Get("Retry-After"); ra != tt.wantRA {
				t.Errorf("Retry-After %q, want %s", ra, tt.wantRA)
			}
			if n := msgCount(t, s); n != before {
				t.Errorf("stream holds %d messages, want %d", n, before)
			}
			if _, err := s.GetMsg(context.Background(), 1); err != nil {
				t.Errorf("the oldest event is gone: %v", err)
			}
		})
	}
}

func TestAdmissionFlagsRejectBadValues(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"fill above 1", nil, []string{"-max-stream-fill", "1.5"},
			`invalid value "1.5" for flag -max-stream-fill: "1.5": want a number between 0 and 1`},
		{"fill not a number", nil, []string{"-max-stream-fill", "most"},
			`invalid value "most" for flag -max-stream-fill: "most": want a number between 0 and 1`},
		{"consumer name with a dot", nil, []string{"-admission-consumers", "kpi,a.b"},
			`invalid value "kpi,a.b" for flag -admission-consumers: consumer "a.b": want 1 to 64 letters, digits, '-' or '_'`},
		{"no consumer", nil, []string{"-admission-consumers", " , "},
			`invalid value " , " for flag -admission-consumers: " , ": want 1 to 16 consumer names`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := envflag.New("ingest", "test", func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			s.SetOutput(io.Discard)
			var cfg Config
			cfg.Register(s)
			err := s.Parse(tt.args)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Parse = %v; want %q", err, tt.wantErr)
			}
		})
	}
}

// Webhooks and the events API pass the same admission: refused alike at the bound, and under
// pressure drawing on one shrunk budget per tenant.
func TestAdmissionSharedByWebhooks(t *testing.T) {
	const bound = 1000
	t.Run("at the bound", func(t *testing.T) {
		_, url := testenv.NATS(t)
		backlogged(t, url, 0, bound, 10)
		r := startWebhooksWith(t, url, admissionTest(bound))
		body := batchOf("w", 2)
		got := r.hook(t, "acme", "generic", body, signed("w-1", time.Now(), body))
		wantJSON(t, got, http.StatusServiceUnavailable, overloadedBacklog)
		if ra := got.header.Get("Retry-After"); ra != "60" {
			t.Errorf("Retry-After %q, want 60", ra)
		}
		if n := msgCount(t, tickets(t, url)); n != bound {
			t.Errorf("stream holds %d messages, want %d", n, bound)
		}
	})
	t.Run("between the soft mark and the bound", func(t *testing.T) {
		_, url := testenv.NATS(t)
		backlogged(t, url, 0, 900, 10)
		r := startWebhooksWith(t, url, admissionTest(bound))
		// busy may send 10 events/s in bursts of 10; under this pressure the rate shrinks to 2/s.
		for i := range 2 {
			body := batchOf(fmt.Sprintf("w%d", i), 5)
			if got := r.hook(t, "busy", "generic", body, signed(fmt.Sprintf("w-%d", i), time.Now(), body)); got.status != http.StatusAccepted {
				t.Fatalf("delivery %d: %d %s, want 202", i, got.status, got.body)
			}
		}
		got := r.post(t, "busy", batchOf("e", 5))
		if got.status != http.StatusTooManyRequests || !strings.Contains(got.body, "the pipeline is busy, so tenant busy may send 20% of its 10 events/s now") {
			t.Fatalf("events API after the webhooks spent the budget: %d %s, want 429", got.status, got.body)
		}
		if n := msgCount(t, tickets(t, url)); n != 910 {
			t.Errorf("stream holds %d messages, want 910", n)
		}
	})
}
