package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ticketpulse/ticketpulse/services/platform/natsembed"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Topology is the servers the services run against, and the faults the harness may inject into
// them. The harness knows nothing else about them, so a Redis Cluster or a NATS cluster plugs in
// by implementing it.
type Topology interface {
	// RedisURL and NATSURL are what the services are configured with (NATSURL may list several
	// servers, comma-separated).
	RedisURL() string
	NATSURL() string
	// StreamReplicas is the -stream-replicas the services run with.
	StreamReplicas() int
	// RedisMasters and NATSNodes count the servers KillRedisMaster and StopNATSNode pick from.
	RedisMasters() int
	NATSNodes() int
	// KillRedisMaster kills master i with SIGKILL; RestartRedisMaster starts it again on its data.
	KillRedisMaster(i int) error
	RestartRedisMaster(i int) error
	// StopNATSNode stops node i; RestartNATSNode starts it again on its store.
	StopNATSNode(i int) error
	RestartNATSNode(i int) error
	// StoreDir is where node i keeps its JetStream store: the disk the disk-full fault fills.
	StoreDir(i int) string
	// Close stops every server and releases what it made (mounts included).
	Close()
}

// Single is one redis-server (AOF on, restartable on the same port and data) and one
// in-process JetStream node whose store sits on a small filesystem of its own when the machine
// lets the test make one.
type Single struct {
	redis    *testenv.RedisServer
	redisDir string

	mu       sync.Mutex
	nats     *server.Server
	natsAddr string
	store    string
	unmount  func()
	// StoreFS says what the store is on: "tmpfs 256MB" or why it is on the ordinary disk.
	StoreFS string
}

var _ Topology = (*Single)(nil)

// StartSingle starts the servers in dir, the NATS store on a tmpfs of storeMB megabytes when
// one can be mounted (root, or the right capability), else on a loop-mounted ext4 image, else on
// dir's own filesystem (StoreFS says which and why).
func StartSingle(dir string, storeMB int) (*Single, error) {
	s := &Single{redisDir: filepath.Join(dir, "redis"), store: filepath.Join(dir, "nats")}
	for _, d := range []string{s.redisDir, s.store} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s.unmount, s.StoreFS = smallFS(dir, s.store, storeMB)
	r, err := testenv.StartRedis(s.redisDir)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.redis = r
	if err := s.startNATS("127.0.0.1:0"); err != nil {
		s.Close()
		return nil, err
	}
	s.natsAddr = strings.TrimPrefix(s.nats.ClientURL(), "nats://")
	return s, nil
}

// smallFS mounts a filesystem of sizeMB megabytes on mnt: tmpfs first, a loop-mounted ext4 image
// next. It returns how to unmount it and what it made, or a no-op and why it made none.
func smallFS(dir, mnt string, sizeMB int) (func(), string) {
	none := func() {}
	tmpfs := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", sizeMB), "tmpfs", mnt)
	out, err := tmpfs.CombinedOutput()
	if err == nil {
		return func() { umount(mnt) }, fmt.Sprintf("tmpfs %d MB", sizeMB)
	}
	why := fmt.Sprintf("mount tmpfs: %v %s", err, strings.TrimSpace(string(out)))
	img := filepath.Join(dir, "nats.img")
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(int64(sizeMB) << 20)
		f.Close()
	}
	if err == nil {
		out, err = exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput()
	}
	if err == nil {
		out, err = exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput()
	}
	if err == nil {
		return func() { umount(mnt); os.Remove(img) }, fmt.Sprintf("ext4 loop image %d MB", sizeMB)
	}
	os.Remove(img)
	return none, fmt.Sprintf("none (%s; loop ext4: %v %s)", why, err, strings.TrimSpace(string(out)))
}

// umount detaches mnt, lazily if something still holds it, so a failed test never leaves it.
func umount(mnt string) {
	if err := syscall.Unmount(mnt, 0); err != nil {
		_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
	}
}

// Mounted says whether the store is on a filesystem of its own, which the disk-full fault needs.
func (s *Single) Mounted() bool { return !strings.HasPrefix(s.StoreFS, "none") }

func (s *Single) startNATS(addr string) error {
	ns, err := natsembed.Start(natsembed.Options{Addr: addr, StoreDir: s.store, Sync: "always", Name: "chaos-0",
		Configure: func(o *server.Options) {
			// Larger than the disk, so a full disk is what stops writes, not JetStream's own
			// accounting.
			o.JetStreamMaxStore = 8 << 30
			o.JetStreamMaxMemory = 256 << 20
		}})
	if err != nil {
		return fmt.Errorf("start nats: %w", err)
	}
	s.mu.Lock()
	s.nats = ns
	s.mu.Unlock()
	return nil
}

func (s *Single) RedisURL() string    { return "redis://" + s.redis.Addr + "/0" }
func (s *Single) NATSURL() string     { return "nats://" + s.natsAddr }
func (s *Single) StreamReplicas() int { return 1 }
func (s *Single) RedisMasters() int   { return 1 }
func (s *Single) NATSNodes() int      { return 1 }
func (s *Single) StoreDir(int) string { return s.store }

func (s *Single) KillRedisMaster(int) error {
	s.redis.Kill()
	return nil
}

func (s *Single) RestartRedisMaster(int) error { return s.redis.Start() }

func (s *Single) StopNATSNode(int) error {
	s.mu.Lock()
	ns := s.nats
	s.nats = nil
	s.mu.Unlock()
	if ns == nil {
		return errors.New("nats node already stopped")
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

func (s *Single) RestartNATSNode(int) error {
	var err error
	// The port is freed by the shutdown, but the kernel may hold it for a moment.
	for try := 0; try < 50; try++ {
		if err = s.startNATS(s.natsAddr); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (s *Single) Close() {
	s.mu.Lock()
	ns := s.nats
	s.nats = nil
	s.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	if s.redis != nil {
		s.redis.Kill()
	}
	if s.unmount != nil {
		s.unmount()
	}
}
