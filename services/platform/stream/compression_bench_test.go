package stream_test

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// BenchmarkTicketsCompression stores b.N canonical ticket events in TICKETS as ingest creates it,
// once uncompressed and once with S2, in the same run, and reports what one event costs:
//
//   - logical-B/event: the stream's State.Bytes per message, the size NATS accounts for (and
//     that -tickets-max-bytes bounds): the same with and without compression;
//   - disk-B/event: the file store's size on disk per message, everything included;
//   - sealed-disk-B/event: the logical size per event times the ratio of sealed blocks on disk
//     to what they hold; only sealed blocks are compressed (the server compresses a block when
//     it fills, 8 MB here), so this is the long-run figure of a stream kept for ever;
//   - events/s: the publish rate, 256 asynchronous publishes in flight.
//
// Run it with a fixed count, e.g. -bench TicketsCompression -benchtime 100000x.
func BenchmarkTicketsCompression(b *testing.B) {
	for _, c := range []struct {
		name         string
		uncompressed bool
	}{{"none", true}, {"s2", false}} {
		b.Run(c.name, func(b *testing.B) {
			srv, url := testenv.NATS(b)
			storeDir := srv.JetStreamConfig().StoreDir
			nc, err := nats.Connect(url)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var cfg jetstream.StreamConfig
			for _, sc := range stream.Owned("ingest", stream.Settings{Replicas: 1, TicketsCompressed: !c.uncompressed}) {
				if sc.Name == stream.TicketsName {
					cfg = sc
				}
			}
			s, err := stream.Ensure(ctx, js, cfg)
			if err != nil {
				b.Fatal(err)
			}
			msgs := benchEvents(b, b.N)

			b.ResetTimer()
			start := time.Now()
			for _, m := range msgs {
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatalf("publish: %v", err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				b.Fatal("publishes not acknowledged in 5 minutes")
			}
			elapsed := time.Since(start)
			b.StopTimer()

			info, err := s.Info(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if info.State.Msgs != uint64(b.N) {
				b.Fatalf("stream holds %d events, want %d", info.State.Msgs, b.N)
			}
			// Sealed blocks are compressed in the background: wait until the store stops shrinking.
			blocks := waitForBlocks(b, storeDir)
			var total, sealed int64
			for _, size := range blocks {
				total += size
			}
			sealed = total - blocks[len(blocks)-1]
			n := float64(b.N)
			logical := float64(info.State.Bytes) / n
			b.ReportMetric(logical, "logical-B/event")
			b.ReportMetric(float64(dirSize(b, storeDir))/n, "disk-B/event")
			// The active (last) block is stored as written, so its file size is the logical size of
			// what it holds; the rest of the logical size is in the sealed blocks.
			if inSealed := int64(info.State.Bytes) - blocks[len(blocks)-1]; len(blocks) > 1 && inSealed > 0 {
				b.ReportMetric(logical*float64(sealed)/float64(inSealed), "sealed-disk-B/event")
			}
			b.ReportMetric(n/elapsed.Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// benchEvents encodes n events shaped like loadgen's traffic: tickets of 3 to 9 events from
// creation to solved, 500 agents in 25 teams, a few tenants, real ids and timestamps.
func benchEvents(b *testing.B, n int) []*nats.Msg {
	b.Helper()
	rng := rand.New(rand.NewPCG(14, 2026))
	tenants := []string{"acme", "globex", "initech", "umbrella"}
	channels := []string{"email", "web", "chat", "api"}
	tagSets := [][]string{nil, {"billing"}, {"refund", "vip"}, {"bug", "mobile"}, {"onboarding"}}
	types := []tpv1.EventType{tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE,
		tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, tpv1.EventType_EVENT_TYPE_PRIORITY_CHANGED}
	ctx := context.Background()
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	out := make([]*nats.Msg, 0, n)
	for ticket := 0; len(out) < n; ticket++ {
		tenant := tenants[rng.IntN(len(tenants))]
		agent := rng.IntN(500)
		agentID := fmt.Sprintf("agent-%03d@%s.example.com", agent, tenant)
		team := fmt.Sprintf("team-%02d", agent%25)
		ticketID := fmt.Sprintf("T%07d", ticket)
		priority := tpv1.Priority(1 + rng.IntN(4))
		customer := fmt.Sprintf("customer-%06d", rng.IntN(200_000))
		events := 3 + rng.IntN(7)
		for i := 0; i < events && len(out) < n; i++ {
			at = at.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
			ev := &tpv1.TicketEvent{
				Id:         fmt.Sprintf("evt-%s-%02d-%x", ticketID, i, rng.Uint32()),
				Tenant:     tenant,
				Source:     "zendesk",
				TicketId:   ticketID,
				OccurredAt: timestamppb.New(at.Truncate(time.Second)),
				ReceivedAt: timestamppb.New(at.Add(time.Duration(rng.IntN(900)) * time.Millisecond)),
				AssigneeId: agentID,
				TeamId:     team,
				Priority:   priority,
				Actor:      &tpv1.Actor{Id: agentID, Kind: tpv1.ActorKind_ACTOR_KIND_AGENT},
				Sequence:   uint64(i + 1),
			}
			switch {
			case i == 0:
				ev.Type = tpv1.EventType_EVENT_TYPE_TICKET_CREATED
				ev.Actor = &tpv1.Actor{Id: customer, Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}
				ev.AssigneeId = ""
				ev.Status = tpv1.TicketStatus_TICKET_STATUS_NEW
				ev.Channel = channels[rng.IntN(len(channels))]
				ev.Tags = tagSets[rng.IntN(len(tagSets))]
			case i == 1:
				ev.Type = tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED
				ev.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN
			case i == events-1:
				ev.Type = tpv1.EventType_EVENT_TYPE_STATUS_CHANGED
				ev.Status = tpv1.TicketStatus_TICKET_STATUS_SOLVED
			default:
				ev.Type = types[rng.IntN(len(types))]
				ev.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN
				if ev.Type == tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE {
					ev.Actor = &tpv1.Actor{Id: customer, Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}
				}
				if ev.Type == tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE {
					public := rng.IntN(5) > 0
					ev.Public = &public
				}
			}
			m, err := eventcodec.Encode(ctx, ev)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

// waitForBlocks returns the sizes of the store's message blocks in block order once two
// readings 200 ms apart agree (at most 10 s).
func waitForBlocks(b *testing.B, dir string) []int64 {
	b.Helper()
	var last []int64
	for range 50 {
		time.Sleep(200 * time.Millisecond)
		var names []string
		sizes := map[string]int64{}
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".blk") || !strings.Contains(path, stream.TicketsName) {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			names = append(names, path)
			sizes[path] = info.Size()
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		slices.SortFunc(names, func(x, y string) int {
			var i, j int
			fmt.Sscanf(filepath.Base(x), "%d.blk", &i)
			fmt.Sscanf(filepath.Base(y), "%d.blk", &j)
			return i - j
		})
		var got []int64
		for _, name := range names {
			got = append(got, sizes[name])
		}
		if len(got) > 0 && slices.Equal(got, last) {
			return got
		}
		last = got
	}
	b.Fatalf("block sizes in %s still changing after 10 s", dir)
	return nil
}

// dirSize is the size of every file under dir.
func dirSize(b *testing.B, dir string) int64 {
	b.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}
