package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Fault kinds.
const (
	KindKill  = "kill"  // kill -9 of a service process, then a restart
	KindPause = "pause" // SIGSTOP of a service process past its ack wait, then SIGCONT
	KindRedis = "redis" // kill -9 of a Redis master, then a restart on its AOF
	KindNATS  = "nats"  // a NATS node stopped, then restarted on its store
	KindDisk  = "disk"  // the NATS store's filesystem filled up, then freed
)

// Kinds are every fault kind, in the order the report lists them.
var Kinds = []string{KindKill, KindPause, KindRedis, KindNATS, KindDisk}

// ParseKinds reads a comma-separated list of fault kinds; "all" or empty is every kind.
func ParseKinds(s string) ([]string, error) {
	if s == "" || s == "all" {
		return Kinds, nil
	}
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		known := false
		for _, want := range Kinds {
			known = known || k == want
		}
		if !known {
			return nil, fmt.Errorf("fault kind %q: want some of %s, or all", k, strings.Join(Kinds, ","))
		}
		out = append(out, k)
	}
	return out, nil
}

// Fault is one injected fault and how the system came back from it.
type Fault struct {
	Kind, Target string
	// Start is when the fault began, Healed when it was over (the process or server back, the
	// disk freed).
	Start, Healed time.Time
	// NotInjected says why the fault could not be made on this machine; empty when it was.
	NotInjected string
	// Err is a failure of the harness to inject or heal it.
	Err error
	// Note says what the harness had to do beyond the fault's own healing.
	Note string
	// FirstAck is the first acknowledged request after Healed; LagZero the first moment after
	// Healed at which every consumer had nothing pending. Zero when not seen before the next
	// fault or the end.
	FirstAck, LagZero time.Time
}

// injector makes faults in the servers and the processes.
type injector struct {
	topo    Topology
	procs   []*Proc
	rnd     *rand.Rand
	ackWait time.Duration
	// mounted says whether the NATS store has a filesystem of its own to fill, or why not.
	mounted  bool
	notMount string
	// ackedSince says whether ingest acknowledged a request since t; replicasBehind lists the
	// stream replicas not current with their leader.
	ackedSince     func(t time.Time) bool
	replicasBehind func() []string
	// tenantMasterHit says whether a Redis fault took the master of tenantRedisKey yet.
	tenantMasterHit bool
}

// tenantRedisKey is the tenant-wide key (notify's delivery log) whose master the first Redis
// fault kills. Tickets, agents and teams each hash to a slot of their own, so every master holds
// some of the tenant's keys; this one is the tenant's alone.
const tenantRedisKey = "tp:{" + tenant + ":nd}:log"

// diskStuckAfter is how long after the disk is freed ingest must acknowledge again, and every
// stream replica be current, before the NATS node is taken as stuck and restarted.
const diskStuckAfter = 10 * time.Second

func (in *injector) inject(kind string) Fault {
	f := Fault{Kind: kind, Start: time.Now()}
	switch kind {
	case KindKill:
		p := in.procs[in.rnd.IntN(len(in.procs))]
		f.Target = p.Name
		if f.Err = p.Kill(); f.Err == nil {
			time.Sleep(500 * time.Millisecond)
			f.Err = p.Start(60 * time.Second)
		}
	case KindPause:
		p := in.procs[in.rnd.IntN(len(in.procs))]
		f.Target = p.Name
		if f.Err = p.Pause(); f.Err == nil {
			time.Sleep(in.ackWait + 1500*time.Millisecond)
			f.Err = p.Resume()
		}
	case KindRedis:
		i := in.rnd.IntN(in.topo.RedisMasters())
		if !in.tenantMasterHit {
			// The first Redis fault takes the master of the tenant's own slot, so a run with a
			// Redis fault always hits it; later ones take any master.
			in.tenantMasterHit = true
			if i, f.Err = in.topo.RedisMasterOf(tenantRedisKey); f.Err != nil {
				break
			}
			if in.topo.RedisMasters() > 1 {
				f.Note = "master of " + tenantRedisKey
			}
		}
		var err error
		f.Target, err = in.topo.KillRedisMaster(i)
		if f.Target != "" {
			// Even when the failover did not settle, the node must come back.
			time.Sleep(time.Second)
			err = errors.Join(err, in.topo.RestartRedisMaster())
		}
		f.Err = err
	case KindNATS:
		i := in.rnd.IntN(in.topo.NATSNodes())
		f.Target = fmt.Sprintf("nats node %d", i)
		stop := time.Now()
		if f.Err = in.topo.StopNATSNode(i); f.Err == nil {
			stopped := time.Now()
			time.Sleep(2 * time.Second)
			f.Err = in.topo.RestartNATSNode(i)
			f.Note = slowNATS(stop, stopped, time.Now())
		}
	case KindDisk:
		i := in.rnd.IntN(in.topo.NATSNodes())
		f.Target = fmt.Sprintf("nats node %d store", i)
		if !in.mounted {
			f.NotInjected = in.notMount
			break
		}
		if f.Err = fillDisk(in.topo.StoreDir(i), 3*time.Second); f.Err != nil {
			break
		}
		// A stream whose write failed for want of space stays stuck on that node in the NATS
		// server (2.15) until the node restarts: nothing is stored (one node) or its replicas
		// fall behind for good (a cluster). An operator who freed the disk and sees ingest still
		// refusing, or the node's replicas not catching up, restarts the node; so does the
		// harness, and says so.
		freed := time.Now()
		var stuck []string
		for {
			stuck = stuck[:0]
			if !in.ackedSince(freed) {
				stuck = append(stuck, "nothing acknowledged")
			}
			if behind := in.replicasBehind(); len(behind) > 0 {
				stuck = append(stuck, behind[0])
			}
			if len(stuck) == 0 || time.Since(freed) > diskStuckAfter {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(stuck) > 0 {
			f.Note = fmt.Sprintf("%s %s after freeing the disk: node restarted", strings.Join(stuck, "; "), diskStuckAfter)
			stop := time.Now()
			if f.Err = in.topo.StopNATSNode(i); f.Err == nil {
				stopped := time.Now()
				f.Err = in.topo.RestartNATSNode(i)
				if slow := slowNATS(stop, stopped, time.Now()); slow != "" {
					f.Note += "; " + slow
				}
			}
		}
	}
	f.Healed = time.Now()
	return f
}

// slowNATSAfter is how long a NATS node's stop or start may take before the report says so: a
// node that recovers a damaged store can take minutes, and the outage alone would not tell which.
const slowNATSAfter = 10 * time.Second

// slowNATS says how long a NATS node's stop (stop to stopped) and start (stopped to started)
// took when either was slow, else nothing.
func slowNATS(stop, stopped, started time.Time) string {
	if stopped.Sub(stop) < slowNATSAfter && started.Sub(stopped) < slowNATSAfter {
		return ""
	}
	return fmt.Sprintf("slow node: stop took %.1fs, start %.1fs", stopped.Sub(stop).Seconds(), started.Sub(stopped).Seconds())
}

// fillDisk writes a file into dir until its filesystem is full, keeps it full for hold, and
// removes the file.
func fillDisk(dir string, hold time.Duration) error {
	path := filepath.Join(dir, "chaos-fill")
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("fill %s: %w", dir, err)
	}
	defer os.Remove(path)
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			return fmt.Errorf("fill %s: %w", dir, err)
		}
	}
	// Writes of less than a chunk may still fit: take the last bytes too.
	for _, err := f.Write(chunk[:4096]); err == nil; _, err = f.Write(chunk[:4096]) {
	}
	time.Sleep(hold)
	return nil
}
