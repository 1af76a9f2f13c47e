package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Three nodes form one JetStream cluster: an R3 stream is placed on all of them, keeps taking
// messages while its leader's node is down (another leads), whether stopped or crashed, and the
// node comes back with its store and catches up.
func TestNATSClusterSurvivesLeaderLoss(t *testing.T) {
	for _, tt := range []struct {
		name string
		lose func(c *NATSClusterServers, i int)
	}{
		{"stop", (*NATSClusterServers).Stop},
		{"crash", (*NATSClusterServers).Crash},
	} {
		t.Run(tt.name, func(t *testing.T) { testLeaderLoss(t, tt.lose) })
	}
}

func testLeaderLoss(t *testing.T, lose func(*NATSClusterServers, int)) {
	c := NATSCluster(t, 3)
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(info.Cluster.Replicas) + 1; n != 3 || info.Cluster.Name != ClusterName {
		t.Fatalf("stream placed on %d nodes of cluster %q, want 3 of %q", n, info.Cluster.Name, ClusterName)
	}
	// publish retries through the election: every message counted here got a PubAck.
	publish := func(id string) {
		t.Helper()
		for {
			// One attempt may be lost with the node it went to: each has its own deadline.
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Publish(actx, "r3.x", []byte(id), jetstream.WithMsgID(id))
			acancel()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %s: %v", id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	publish("before")
	leader, err := c.WaitStreamLeader("R3", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Name(leader); got != info.Cluster.Leader {
		t.Errorf("StreamLeader = %s, stream info says %s", got, info.Cluster.Leader)
	}
	lost := time.Now()
	lose(c, leader)
	if c.Server(leader) != nil {
		t.Fatal("a stopped node still has a server")
	}
	publish("during")
	next, err := c.WaitStreamLeader("R3", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if next == leader {
		t.Fatalf("node %s leads R3 while stopped", c.Name(leader))
	}
	t.Logf("R3 led by %s %v after %s was lost", c.Name(next), time.Since(lost).Round(time.Millisecond), c.Name(leader))
	c.Restart(leader)
	publish("after")
	// The restarted node holds all three messages once it is current.
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err = st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		current := len(info.Cluster.Replicas) == 2
		for _, r := range info.Cluster.Replicas {
			current = current && r.Current && !r.Offline
		}
		if current && c.Server(leader).JetStreamIsStreamCurrent("$G", "R3") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("R3 replicas never all current after the restart: leader %s, replicas %+v", info.Cluster.Leader, info.Cluster.Replicas)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info.State.Msgs != 3 {
		t.Errorf("R3 holds %d messages, want 3", info.State.Msgs)
	}
}
