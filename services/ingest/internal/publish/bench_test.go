package publish

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/natsembed"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
)

// BenchmarkPublishSyncAlways publishes requests of 100 events into TICKETS on an embedded
// server that fsyncs every write (sync "always", file store in a temporary directory), from 8
// concurrent requests as a busy ingest would: once one message per event (each an fsync), once
// one atomic batch per request (one fsync for the batch). b.N counts requests; events/s is the
// figure to compare, measured in the same run. Run it with e.g. -benchtime 200x.
func BenchmarkPublishSyncAlways(b *testing.B) {
	const perRequest, concurrency = 100, 8
	for _, c := range []struct {
		name  string
		batch bool
	}{{"per-message", false}, {"atomic-batch", true}} {
		b.Run(c.name, func(b *testing.B) {
			srv, err := natsembed.Start(natsembed.Options{Addr: "127.0.0.1:0", StoreDir: b.TempDir(), Sync: "always", Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Shutdown()
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := stream.Ensure(context.Background(), js, stream.Tickets(0, 1)); err != nil {
				b.Fatal(err)
			}
			p, err := New(nc, Options{MaxPending: 4096, AckTimeout: 30 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			created := ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range concurrency {
				wg.Go(func() {
					for {
						n := int(next.Add(1)) - 1
						if n >= b.N {
							return
						}
						evs := make([]*ticketpulsev1.TicketEvent, perRequest)
						for i := range evs {
							evs[i] = ev("acme", "generic", fmt.Sprintf("evt-%d-%d", n, i), created)
						}
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						var err error
						if c.batch {
							var res Result
							res, err = p.Publish(ctx, evs)
							if err == nil && res.Unbatched > 0 {
								err = fmt.Errorf("%d events unbatched", res.Unbatched)
							}
						} else {
							msgs := make([]*nats.Msg, len(evs))
							for i, e := range evs {
								if msgs[i], err = eventcodec.Encode(ctx, e); err != nil {
									break
								}
							}
							if err == nil {
								_, err = p.publishEach(ctx, msgs)
							}
						}
						cancel()
						if err != nil {
							failed.CompareAndSwap(nil, err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N*perRequest)/elapsed.Seconds(), "events/s")
		})
	}
}
