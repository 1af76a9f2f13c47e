package grpcapi

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// A watch whose consumer's server goes away before it delivered anything still starts where it
// was opened: a change stored while the client re-creates the consumer is streamed, not
// skipped (DeliverNew would start after it).
func TestWatchSurvivesLosingItsConsumerServer(t *testing.T) {
	c := testenv.NATSCluster(t, 3)
	admin, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	adminJS, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := stream.Ensure(ctx, adminJS, stream.Escalations(3))
	if err != nil {
		t.Fatal(err)
	}
	publish := func(id string) {
		t.Helper()
		data, err := proto.Marshal(&tpv1.EscalationChange{Escalation: &tpv1.Escalation{Id: id}})
		if err != nil {
			t.Fatal(err)
		}
		// Retried while the stream elects a leader.
		for {
			// Each attempt has its own bound: one sent while the connection moves to another
			// node may never be answered.
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := adminJS.Publish(actx, stream.EscalationSubject("acme", "low-csat"), data)
			acancel()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %s: %v (stream leader: node %d)", id, err, c.StreamLeader(stream.EscalationsName))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	publish("before-the-watch")

	nc, err := nats.Connect(c.URL(), nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	NewServer(nil, &changes{}, js, Options{}, quiet).Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	watch, err := tpv1.NewEscalationServiceClient(conn).WatchEscalations(ctx, &tpv1.WatchEscalationsRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}

	// The watch's consumer is the stream's only one; its server is the one to lose.
	// Asked again until it answers: a listing sent while the cluster is still busy with the
	// stream may go unanswered, and a consumer just created may have no leader yet.
	consumerHost := func() (string, error) {
		lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
		defer lcancel()
		var host string
		list := st.ListConsumers(lctx)
		for info := range list.Info() {
			if info.Cluster != nil {
				host = info.Cluster.Leader
			}
		}
		return host, list.Err()
	}
	var host string
	for {
		h, err := consumerHost()
		if c.Index(h) >= 0 {
			host = h
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the watch's consumer is on %q, not a node of the cluster (listing: %v)", h, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	i := c.Index(host)
	t.Logf("the watch's consumer is on node %d", i)
	c.Stop(i)
	publish("while-the-consumer-is-lost")

	got := make(chan string, 1)
	go func() {
		r, err := watch.Recv()
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- r.GetChange().GetEscalation().GetId()
	}()
	// The client notices the lost consumer by its missing heartbeats (5 s each).
	select {
	case id := <-got:
		if id != "while-the-consumer-is-lost" {
			t.Fatalf("watch streamed %q first, want while-the-consumer-is-lost", id)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the change stored while the watch's consumer was lost never came")
	}
}
