package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/publish"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

const benchBatch = 100

// benchJetStream starts embedded JetStream with the TICKETS stream and returns a connection.
func benchJetStream(b *testing.B) *nats.Conn {
	b.Helper()
	_, url := testenv.NATS(b)
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := stream.Ensure(context.Background(), js, stream.Tickets(time.Hour, 1)); err != nil {
		b.Fatal(err)
	}
	return nc
}

// batchBody writes a realistic batch whose ids are unique to iteration n.
func batchBody(buf *bytes.Buffer, n int) {
	buf.Reset()
	buf.WriteByte('[')
	for j := 0; j < benchBatch; j++ {
		if j > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"id":"evt-`)
		buf.WriteString(strconv.Itoa(n))
		buf.WriteByte('-')
		buf.WriteString(strconv.Itoa(j))
		buf.WriteString(`","ticket_id":"T-`)
		buf.WriteString(strconv.Itoa(n*benchBatch/4 + j/4))
		buf.WriteString(`","type":"agent_message","occurred_at":"2026-03-02T09:14:05Z","actor":{"id":"ana@example.com","kind":"agent"},"assignee_id":"ana@example.com","team_id":"billing","priority":"high","public":true,"channel":"email","tags":["vip","invoice"]}`)
	}
	buf.WriteByte(']')
}

func newBenchHandler(b *testing.B, nc *nats.Conn) (*Handler, string) {
	b.Helper()
	authz, ts := testAuth(b)
	tel, err := telemetry.Setup(context.Background(), "ingest-bench", "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	pub, err := publish.New(nc, publish.Options{MaxPending: 4096, AckTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{Auth: authz, MaxEvents: 1000, MaxBodyBytes: 4 << 20, PublishTimeout: 5 * time.Second, MaxFutureSkew: 5 * time.Minute},
		pub, slog.New(slog.NewTextHandler(io.Discard, nil)), tel.Tracer, tel.Meter)
	if err != nil {
		b.Fatal(err)
	}
	return h, ts.AcmeEvents
}

// BenchmarkIngestPost posts batches of 100 canonical events and waits for the 202, once straight
// into the handler and once over a loopback HTTP connection.
func BenchmarkIngestPost(b *testing.B) {
	b.Run("handler", func(b *testing.B) {
		h, key := newBenchHandler(b, benchJetStream(b))
		var body bytes.Buffer
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			batchBody(&body, i)
			req := httptest.NewRequest(http.MethodPost, "/v1/tenants/acme/events", bytes.NewReader(body.Bytes()))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			req.SetPathValue("tenant", "acme")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("http", func(b *testing.B) {
		mux := http.NewServeMux()
		h, key := newBenchHandler(b, benchJetStream(b))
		h.Register(mux)
		srv := httptest.NewServer(mux)
		b.Cleanup(srv.Close)
		client := srv.Client()
		url := srv.URL + "/v1/tenants/acme/events"
		var body bytes.Buffer
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			batchBody(&body, i)
			req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkRawJetStreamPublishAsync is the floor for BenchmarkIngestPost: the same number of
// messages of the same size, subject and headers, published asynchronously and all acknowledged,
// with no HTTP, JSON or validation.
func BenchmarkRawJetStreamPublishAsync(b *testing.B) {
	nc := benchJetStream(b)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	var body bytes.Buffer
	batchBody(&body, 0)
	decoded, err := canonical.Decode(body.Bytes(), canonical.Options{Tenant: "acme", Now: time.Now(), MaxFutureSkew: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	events := canonical.Proto(decoded, "acme", time.Now())
	payloads := make([][]byte, len(events))
	for j, ev := range events {
		if payloads[j], err = proto.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
	futures := make([]jetstream.PubAckFuture, benchBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		prefix := "acme/generic/evt-" + strconv.Itoa(i) + "-"
		for j := range futures {
			m := &nats.Msg{Subject: "tickets.acme.agent_message", Data: payloads[j], Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, prefix+strconv.Itoa(j))
			m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			if futures[j], err = js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			case <-time.After(5 * time.Second):
				b.Fatal("no ack in 5s")
			}
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}
