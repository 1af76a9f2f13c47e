package stream

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestSubjects(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"ticket", TicketSubject("acme", "agent_message"), "tickets.acme.agent_message"},
		{"agent kpi", AgentKPISubject("acme", "ana"), "kpi.acme.agent.ana"},
		{"team kpi", TeamKPISubject("acme", "billing"), "kpi.acme.team.billing"},
		{"agent kpi, e-mail", AgentKPISubject("acme", "ana@example.com"), "kpi.acme.agent.ana@example~2Ecom"},
		{"agent kpi, wildcards and braces", AgentKPISubject("acme", "a.b*c >{x}"), "kpi.acme.agent.a~2Eb~2Ac~20~3E~7Bx~7D"},
		{"team kpi, unicode", TeamKPISubject("acme", "Équipe ü"), "kpi.acme.team.~C3~89quipe~20~C3~BC"},
		{"agent kpi, empty id", AgentKPISubject("acme", ""), "kpi.acme.agent.~"},
		{"escalation", EscalationSubject("acme", "first-response"), "escalations.acme.first-response"},
		{"tenant escalations", TenantEscalationsFilter("acme"), "escalations.acme.>"},
		{"dead letter", DeadletterSubject("kpi", "acme"), "deadletter.kpi.acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// An id's token is one subject token that reads back as the id, whatever the id holds.
func TestKPISubjectTokenRoundTrip(t *testing.T) {
	for _, id := range []string{"a.b*c >{x}", "日本語 チーム", "tab\there", "~7E", "..", ">", "*", ""} {
		subj := AgentKPISubject("acme", id)
		parts := strings.Split(subj, ".")
		if len(parts) != 4 || parts[2] != "agent" {
			t.Fatalf("%q: subject %q is not kpi.<tenant>.agent.<token>", id, subj)
		}
		if strings.ContainsAny(parts[3], "*> \t\r\n{}") {
			t.Errorf("%q: token %q holds a wildcard, whitespace or brace", id, parts[3])
		}
		back, err := idtoken.Unescape(parts[3])
		if err != nil || back != id {
			t.Errorf("%q: token %q reads back as %q (%v)", id, parts[3], back, err)
		}
	}
}

func TestConfigs(t *testing.T) {
	tests := []struct {
		name     string
		give     jetstream.StreamConfig
		wantName string
		wantSubj string
	}{
		{"tickets", Tickets(time.Hour, 0), TicketsName, TicketsFilter},
		{"kpi", KPI(3), KPIName, KPIFilter},
		{"escalations", Escalations(1), EscalationsName, EscalationsFilter},
		{"dead letters", Deadletter(1), DeadletterName, DeadletterFilter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.give.Name != tt.wantName || len(tt.give.Subjects) != 1 || tt.give.Subjects[0] != tt.wantSubj {
				t.Errorf("name %q subjects %v, want %q [%q]", tt.give.Name, tt.give.Subjects, tt.wantName, tt.wantSubj)
			}
			if tt.give.Storage != jetstream.FileStorage || tt.give.Replicas < 1 {
				t.Errorf("storage %v replicas %d, want file storage and at least one replica", tt.give.Storage, tt.give.Replicas)
			}
		})
	}
	if c := Tickets(time.Hour, 0); c.MaxAge != time.Hour || c.Duplicates != 2*time.Minute || c.Replicas != 1 {
		t.Errorf("TICKETS max age %v duplicates %v replicas %d", c.MaxAge, c.Duplicates, c.Replicas)
	}
	if c := Tickets(time.Hour, 1); c.MaxBytes != -1 || c.Discard != jetstream.DiscardNew {
		t.Errorf("TICKETS max bytes %d discard %v, want no limit and discard new", c.MaxBytes, c.Discard)
	}
	if c := KPI(3); c.MaxMsgsPerSubject != 1 || c.Replicas != 3 {
		t.Errorf("KPI keeps %d per subject on %d replicas, want 1 on 3", c.MaxMsgsPerSubject, c.Replicas)
	}
	if c := Escalations(1); c.Duplicates != 10*time.Minute || c.MaxAge != 30*24*time.Hour {
		t.Errorf("ESCALATIONS duplicates %v max age %v", c.Duplicates, c.MaxAge)
	}
	if c := Deadletter(1); c.MaxAge != 30*24*time.Hour {
		t.Errorf("DEADLETTER max age %v", c.MaxAge)
	}
}

func TestOwned(t *testing.T) {
	tests := []struct {
		give string
		want []string
	}{
		{"ingest", []string{TicketsName, DeadletterName}},
		{"kpi", []string{KPIName, DeadletterName}},
		{"escalation", []string{EscalationsName, DeadletterName}},
		{"notify", []string{DeadletterName}},
		{"console", nil},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got := Owned(tt.give, Settings{Replicas: 3, TicketsRetention: time.Hour, TicketsMaxBytes: 1 << 30})
			var names []string
			for _, c := range got {
				names = append(names, c.Name)
				if c.Replicas != 3 {
					t.Errorf("%s has %d replicas, want 3", c.Name, c.Replicas)
				}
				if c.Name == TicketsName && (c.MaxAge != time.Hour || c.MaxBytes != 1<<30 || c.Discard != jetstream.DiscardNew) {
					t.Errorf("TICKETS retention %v max bytes %d discard %v, want 1h, 1 GiB, discard new", c.MaxAge, c.MaxBytes, c.Discard)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Errorf("owns %v, want %v", names, tt.want)
			}
		})
	}
}

func TestEnsureAndWait(t *testing.T) {
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url)
	ctx := context.Background()

	// A consumer that starts first waits for the owner to create the stream.
	waited := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := Wait(wctx, js, TicketsName, quiet)
		waited <- err
	}()
	time.Sleep(100 * time.Millisecond)
	for _, sc := range Owned("ingest", Settings{Replicas: 1, TicketsRetention: time.Hour}) {
		if _, err := Ensure(ctx, js, sc); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-waited; err != nil {
		t.Fatalf("Wait: %v", err)
	}
	// Ensuring again with other settings updates the stream in place.
	s, err := Ensure(ctx, js, Tickets(2*time.Hour, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 2*time.Hour {
		t.Errorf("updated max age %v, want 2h", got)
	}
	if _, err := js.Publish(ctx, TicketSubject("acme", "ticket_created"), []byte("x")); err != nil {
		t.Fatalf("publish on a ticket subject: %v", err)
	}
	if _, err := js.Publish(ctx, DeadletterSubject("ingest", "acme"), []byte("x")); err != nil {
		t.Fatalf("publish on a dead-letter subject: %v", err)
	}

	// A stream nobody creates: Wait ends with its context.
	wctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	if _, err := Wait(wctx, js, "NOPE", quiet); err == nil {
		t.Fatal("Wait for a missing stream succeeded")
	}
}

// A TICKETS stream made before it had a size limit takes the limit and the discard policy when
// its owner ensures it again, and once full it refuses new events instead of dropping old ones.
func TestTicketsSizeLimitAppliesToAnExistingStream(t *testing.T) {
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url)
	ctx := context.Background()
	old := Tickets(time.Hour, 1)
	old.Discard = jetstream.DiscardOld
	if _, err := Ensure(ctx, js, old); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	if _, err := js.Publish(ctx, TicketSubject("acme", "ticket_created"), payload); err != nil {
		t.Fatal(err)
	}
	const limit = 8 << 10
	var cfg jetstream.StreamConfig
	for _, c := range Owned("ingest", Settings{Replicas: 1, TicketsRetention: time.Hour, TicketsMaxBytes: limit}) {
		if c.Name == TicketsName {
			cfg = c
		}
	}
	s, err := Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config; got.MaxBytes != limit || got.Discard != jetstream.DiscardNew {
		t.Fatalf("updated stream: max bytes %d discard %v, want %d and discard new", got.MaxBytes, got.Discard, limit)
	}
	var refused error
	for range 20 {
		if _, refused = js.Publish(ctx, TicketSubject("acme", "ticket_created"), payload); refused != nil {
			break
		}
	}
	if refused == nil {
		t.Fatalf("20 KB published into a %d-byte stream", limit)
	}
	first, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("the first event is gone from a full stream: %v", err)
	}
	if len(first.Data) != len(payload) {
		t.Errorf("first message holds %d bytes, want %d", len(first.Data), len(payload))
	}
}

// Snapshot subjects of odd ids are stored on their own subjects: the KPI stream keeps one
// message per subject, so two ids that collided would lose a snapshot.
func TestKPISubjectsKeepOnePerID(t *testing.T) {
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, KPI(1))
	ctx := context.Background()
	ids := []string{"a.b*c >{x}", "a.b", "a", "b", "Équipe", "日本語", ""}
	for _, id := range ids {
		for _, subj := range []string{AgentKPISubject("acme", id), TeamKPISubject("acme", id)} {
			for range 2 {
				if _, err := js.Publish(ctx, subj, []byte(id)); err != nil {
					t.Fatalf("publish %q: %v", subj, err)
				}
			}
		}
	}
	s, err := js.Stream(ctx, KPIName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(2 * len(ids)); info.State.Msgs != want {
		t.Errorf("stream holds %d messages, want %d: one per agent and team", info.State.Msgs, want)
	}
}

// Compression is off by default and S2 only when asked; an existing stream takes either setting
// in place when its owner ensures it again, and every event stored under the old one stays
// readable.
func TestTicketsCompressionAppliesToAnExistingStream(t *testing.T) {
	tickets := func(s Settings) jetstream.StreamConfig {
		for _, c := range Owned("ingest", s) {
			if c.Name == TicketsName {
				return c
			}
		}
		t.Fatal("ingest owns no TICKETS stream")
		return jetstream.StreamConfig{}
	}
	if got := Tickets(0, 1).Compression; got != jetstream.NoCompression {
		t.Fatalf("TICKETS compression %v, want none", got)
	}
	if got := tickets(Settings{}).Compression; got != jetstream.NoCompression {
		t.Fatalf("ingest's TICKETS compression %v by default, want none", got)
	}
	if got := tickets(Settings{TicketsCompressed: true}).Compression; got != jetstream.S2Compression {
		t.Fatalf("ingest's TICKETS compression %v when compressed, want s2", got)
	}

	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url)
	ctx := context.Background()
	payload := []byte(strings.Repeat("ticket event ", 100))
	var seq uint64
	for i, want := range []jetstream.StoreCompression{jetstream.NoCompression, jetstream.S2Compression, jetstream.NoCompression} {
		s, err := Ensure(ctx, js, tickets(Settings{TicketsCompressed: want == jetstream.S2Compression}))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Compression != want {
			t.Fatalf("step %d: stream compression %v, want %v", i, info.Config.Compression, want)
		}
		for range 3 {
			ack, err := js.Publish(ctx, TicketSubject("acme", "ticket_created"), payload)
			if err != nil {
				t.Fatalf("step %d: publish: %v", i, err)
			}
			seq = ack.Sequence
		}
		for n := uint64(1); n <= seq; n++ {
			m, err := s.GetMsg(ctx, n)
			if err != nil {
				t.Fatalf("step %d: message %d: %v", i, n, err)
			}
			if string(m.Data) != string(payload) {
				t.Fatalf("step %d: message %d reads back as %d bytes, want %d", i, n, len(m.Data), len(payload))
			}
		}
	}
	if seq != 9 {
		t.Errorf("stream holds %d messages, want 9", seq)
	}
}

// TICKETS created before atomic publish existed is updated in place: the events it holds stay,
// and a batch it refused before the update is stored after it, all at once.
func TestTicketsAtomicPublishAppliesToAnExistingStream(t *testing.T) {
	if !Tickets(0, 1).AllowAtomicPublish {
		t.Fatal("TICKETS does not allow atomic publish")
	}
	for _, c := range Owned("ingest", Settings{TicketsMaxBytes: 1 << 20, TicketsCompressed: true}) {
		if c.Name == TicketsName && !c.AllowAtomicPublish {
			t.Fatal("ingest's TICKETS does not allow atomic publish")
		}
	}
	_, url := testenv.NATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := Tickets(time.Hour, 1)
	old.AllowAtomicPublish = false
	if _, err := Ensure(ctx, js, old); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, TicketSubject("acme", "ticket_created"), []byte("before")); err != nil {
		t.Fatal(err)
	}
	// batch publishes three messages as one atomic batch and returns the commit's answer.
	batch := func(id string) string {
		t.Helper()
		for i := 1; i <= 3; i++ {
			m := nats.NewMsg(TicketSubject("acme", "ticket_created"))
			m.Data = []byte(id + "-" + strconv.Itoa(i))
			m.Header.Set("Nats-Batch-Id", id)
			m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i))
			if i < 3 {
				if err := nc.PublishMsg(m); err != nil {
					t.Fatal(err)
				}
				continue
			}
			m.Header.Set("Nats-Batch-Commit", "1")
			reply, err := nc.RequestMsg(m, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return string(reply.Data)
		}
		return ""
	}
	if got := batch("refused"); !strings.Contains(got, `"err_code":10174`) {
		t.Fatalf("batch into a stream without atomic publish answered %s, want error 10174 (disabled)", got)
	}
	s, err := Ensure(ctx, js, Tickets(time.Hour, 1))
	if err != nil {
		t.Fatalf("update in place: %v", err)
	}
	if !s.CachedInfo().Config.AllowAtomicPublish {
		t.Fatal("updated stream does not allow atomic publish")
	}
	if got := batch("taken"); !strings.Contains(got, `"seq":4`) || !strings.Contains(got, `"count":3`) {
		t.Fatalf("batch after the update answered %s, want the commit at seq 4 with count 3", got)
	}
	for seq, want := range map[uint64]string{1: "before", 2: "taken-1", 3: "taken-2", 4: "taken-3"} {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if string(m.Data) != want {
			t.Errorf("message %d = %q, want %q", seq, m.Data, want)
		}
	}
}

// Ensure keeps asking a cluster that cannot answer (two of its three nodes down: no quorum) and
// creates the stream once it can, instead of spending its caller's whole deadline on one request.
func TestEnsureWaitsForTheClusterToAnswer(t *testing.T) {
	c := testenv.NATSCluster(t, 3)
	if _, err := c.WaitMetaLeader(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Connected to node 0 only, the one left running.
	nc, err := nats.Connect(c.URLs()[0], nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop(1)
	c.Stop(2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Ensure(ctx, js, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}, Replicas: 3})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Ensure returned while the cluster had no quorum: %v", err)
	case <-time.After(3 * time.Second):
	}
	c.Restart(1)
	c.Restart(2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Ensure once the cluster was back: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Ensure never returned")
	}
	if _, err := c.WaitStreamLeader("WORK", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// A refusal is returned at once, not asked again: a stream whose subjects overlap another's.
func TestEnsureReturnsARefusal(t *testing.T) {
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, jetstream.StreamConfig{Name: "A", Subjects: []string{"x.>"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := Ensure(ctx, js, jetstream.StreamConfig{Name: "B", Subjects: []string{"x.y"}})
	if err == nil || !strings.Contains(err.Error(), "attempt 1") {
		t.Fatalf("Ensure = %v; want the overlap refused on the first attempt", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the refusal took %v", d)
	}
}
