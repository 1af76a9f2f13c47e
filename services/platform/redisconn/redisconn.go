// Package redisconn opens go-redis clients from a URL: one server, a Redis Cluster, or a master
// found through Sentinel, each behind redis.UniversalClient so the code using it does not change.
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketpulse/ticketpulse/services/platform/clienttls"
	"github.com/ticketpulse/ticketpulse/services/platform/redact"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// Mode is how the URL's addresses are read.
type Mode string

const (
	// Single is one server (or a proxy in front of several).
	Single Mode = "single"
	// Cluster is a Redis Cluster: the URL's addresses are seed nodes; the client learns the
	// others and the slot map from them.
	Cluster Mode = "cluster"
	// Sentinel is a master found through Sentinel: the URL's addresses are the sentinels.
	Sentinel Mode = "sentinel"
)

// StateReloadInterval is how often a cluster client reads the slot map again, and so about how
// long after a failover it keeps sending to the master that died.
const StateReloadInterval = time.Second

// Modes are the words -redis-mode takes.
var Modes = []string{string(Single), string(Cluster), string(Sentinel)}

// TLS are the files of a TLS connection to Redis: the CAs that sign the server's certificate
// (the system's when empty) and a client certificate with its key (for tls-auth-clients). Any of
// them turns TLS on, as a rediss:// URL does.
type TLS struct {
	CA, Cert, Key string
}

// Check reports each setting that cannot work, naming its flag (prefix + "tls-cert" and so on).
func (t TLS) Check(prefix string) []error {
	var errs []error
	if (t.Cert == "") != (t.Key == "") {
		errs = append(errs, fmt.Errorf("-%stls-cert and -%stls-key: give both or neither", prefix, prefix))
	}
	for _, f := range []struct{ flag, path string }{{"tls-ca", t.CA}, {"tls-cert", t.Cert}, {"tls-key", t.Key}} {
		if err := clienttls.Readable(f.path); err != nil {
			errs = append(errs, fmt.Errorf("-%s%s: %w", prefix, f.flag, err))
		}
	}
	return errs
}

// Options are the settings beside the URL.
type Options struct {
	// Mode is read from the URL when empty (see Parse).
	Mode Mode
	// MasterName is the name the sentinels monitor the master under; Sentinel mode only. The
	// URL's master_name parameter may give it instead.
	MasterName string
	TLS        TLS
}

// Target is a parsed Redis setting, ready to connect.
type Target struct {
	Mode Mode
	// Seeds are the host:port the client starts from: the server, the cluster's seed nodes or
	// the sentinels.
	Seeds []string
	// MasterName is the Sentinel master's name.
	MasterName string

	url      string // redacted
	single   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

// String names the mode, the seeds and, with Sentinel, the master, for logs.
func (t *Target) String() string {
	s := string(t.Mode) + " " + strings.Join(t.Seeds, ",")
	if t.Mode == Sentinel {
		s += " master " + t.MasterName
	}
	return s
}

// Parse reads a redis:// or rediss:// URL, following go-redis's conventions:
//
//	single:   redis://user:pass@host:6379/0
//	cluster:  redis://user:pass@host1:7000?addr=host2:7001&addr=host3:7002 (database 0 only)
//	sentinel: redis://user:pass@sentinel1:26379/0?addr=sentinel2:26379&master_name=mymaster
//
// Without o.Mode the URL tells: a master name (master_name= or o.MasterName) means Sentinel,
// seed addresses (addr=) a cluster, else one server; o.Mode says so for a cluster given one
// seed. With Sentinel the URL's user and password log in to the sentinels and, unless the
// username and password parameters give other ones, to the master and replicas too. No error
// repeats a password.
func Parse(url string, o Options) (*Target, error) {
	red := redact.URL(url)
	u, err := neturl.Parse(url)
	if err != nil {
		// url.Error repeats the URL, password and all.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis url %q: %w", red, err)
	}
	q := u.Query()
	mode := o.Mode
	switch {
	case mode != "":
	case o.MasterName != "" || q.Has("master_name"):
		mode = Sentinel
	case q.Has("addr"):
		mode = Cluster
	default:
		mode = Single
	}
	t := &Target{Mode: mode, url: red}
	switch mode {
	case Single:
		if q.Has("addr") {
			return nil, fmt.Errorf("redis url %q: several addresses (addr=) need -redis-mode cluster or sentinel", red)
		}
		if t.single, err = redis.ParseURL(url); err != nil {
			return nil, fmt.Errorf("redis url %q: %w", red, plain(err))
		}
		t.Seeds = []string{t.single.Addr}
	case Cluster:
		if db := strings.Trim(u.Path, "/"); db != "" && db != "0" {
			return nil, fmt.Errorf("redis url %q: database %q: a Redis Cluster has database 0 only", red, db)
		}
		if t.cluster, err = redis.ParseClusterURL(url); err != nil {
			return nil, fmt.Errorf("redis url %q: %w", red, plain(err))
		}
		t.Seeds = t.cluster.Addrs
	case Sentinel:
		if q.Has("master_name") && o.MasterName != "" && q.Get("master_name") != o.MasterName {
			return nil, fmt.Errorf("redis url %q: master_name=%q and -redis-master-name %q disagree", red, q.Get("master_name"), o.MasterName)
		}
		if t.failover, err = redis.ParseFailoverURL(url); err != nil {
			return nil, fmt.Errorf("redis url %q: %w", red, plain(err))
		}
		if o.MasterName != "" {
			t.failover.MasterName = o.MasterName
		}
		if t.failover.MasterName == "" {
			return nil, fmt.Errorf("redis url %q: -redis-master-name: required with -redis-mode sentinel", red)
		}
		if !q.Has("username") && !q.Has("password") {
			t.failover.Username, t.failover.Password = t.failover.SentinelUsername, t.failover.SentinelPassword
		}
		t.Seeds, t.MasterName = t.failover.SentinelAddrs, t.failover.MasterName
	default:
		return nil, fmt.Errorf("-redis-mode %q: want single, cluster or sentinel", mode)
	}
	if err := t.setTLS(o.TLS); err != nil {
		return nil, err
	}
	return t, nil
}

// plain drops a url.Error's copy of the URL from err.
func plain(err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (t *Target) setTLS(files TLS) error {
	tc, err := clienttls.Config(files.CA, files.Cert, files.Key)
	if err != nil {
		return fmt.Errorf("redis %s: %w", t.url, err)
	}
	switch t.Mode {
	case Single:
		if tc != nil {
			if t.single.TLSConfig != nil {
				// rediss:// set the server name to check; keep it.
				tc.ServerName = t.single.TLSConfig.ServerName
			} else {
				tc.ServerName = hostOf(t.single.Addr)
			}
			t.single.TLSConfig = tc
		}
	case Cluster:
		t.cluster.TLSConfig = nodeTLS(tc, t.cluster.TLSConfig)
	case Sentinel:
		t.failover.TLSConfig = nodeTLS(tc, t.failover.TLSConfig)
	}
	return nil
}

// nodeTLS is the TLS of a client that reaches servers the seeds only named (cluster nodes, the
// master a sentinel points to): with no server name set, each connection checks the certificate
// against the host it dials, not against the first seed's. files wins over what rediss:// set.
func nodeTLS(files, parsed *tls.Config) *tls.Config {
	tc := files
	if tc == nil {
		tc = parsed
	}
	if tc == nil {
		return nil
	}
	tc = tc.Clone()
	tc.ServerName = ""
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return tc
}

// Connect opens the client and checks it answers: a ping, and in a cluster a ping of every
// master with the cluster's state ok. The client is sized for pipelined batches.
func (t *Target) Connect(ctx context.Context) (redis.UniversalClient, error) {
	var c redis.UniversalClient
	switch t.Mode {
	case Single:
		tune(&t.single.ReadTimeout, &t.single.WriteTimeout)
		// RESP2 keeps HGETALL replies flat and avoids the client's CLIENT SETINFO round trip noise.
		t.single.Protocol, t.single.DisableIdentity = 2, true
		c = redis.NewClient(t.single)
	case Cluster:
		tune(&t.cluster.ReadTimeout, &t.cluster.WriteTimeout)
		t.cluster.Protocol, t.cluster.DisableIdentity = 2, true
		// go-redis reads the slot map again only on MOVED or once this old (60 s by default): a
		// master that died answers no MOVED, so its replica's promotion would go unnoticed for a
		// minute. One CLUSTER SLOTS a second is cheap.
		t.cluster.ClusterStateReloadInterval = StateReloadInterval
		c = redis.NewClusterClient(t.cluster)
	case Sentinel:
		tune(&t.failover.ReadTimeout, &t.failover.WriteTimeout)
		t.failover.Protocol, t.failover.DisableIdentity = 2, true
		c = redis.NewFailoverClient(t.failover)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := Ping(pctx, c); err != nil {
		c.Close()
		return nil, fmt.Errorf("ping redis %s: %w", t.url, err)
	}
	return c, nil
}

func tune(read, write *time.Duration) {
	if *read == 0 {
		*read = 5 * time.Second
	}
	if *write == 0 {
		*write = 5 * time.Second
	}
}

// Open connects to one server at a redis:// or rediss:// URL and pings it; tools that read one
// server's INFO use it.
func Open(ctx context.Context, url string) (*redis.Client, error) {
	c, err := Dial(ctx, url, Options{})
	if err != nil {
		return nil, err
	}
	return c.(*redis.Client), nil
}

// Dial parses url in o's mode and connects. A user and password in the URL authenticate as a
// Redis ACL user; no error repeats the password.
func Dial(ctx context.Context, url string, o Options) (redis.UniversalClient, error) {
	t, err := Parse(url, o)
	if err != nil {
		return nil, err
	}
	return t.Connect(ctx)
}

// Ping checks the client can serve: a single server or the Sentinel master answers PING; every
// master of a cluster answers PING and reports the cluster's state ok (every slot served), so a
// master that is down makes the check fail until its replica took over.
func Ping(ctx context.Context, c redis.UniversalClient) error {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return c.Ping(ctx).Err()
	}
	// ForEachMaster calls fn on every master at once.
	var masters atomic.Int64
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		info, err := node.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("master %s: %w", node.Options().Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("master %s: cluster state is not ok", node.Options().Addr)
		}
		masters.Add(1)
		return nil
	})
	if err != nil {
		// The slot map may be stale (a failover moved a master): read it again for the next try.
		cc.ReloadState(ctx)
		return err
	}
	if masters.Load() == 0 {
		return errors.New("no cluster master known")
	}
	return nil
}

// Masters counts the masters a cluster client knows (1 for another client), for logs.
func Masters(ctx context.Context, c redis.UniversalClient) int {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return 1
	}
	var n atomic.Int64
	_ = cc.ForEachMaster(ctx, func(context.Context, *redis.Client) error { n.Add(1); return nil })
	return int(n.Load())
}

func hostOf(addr string) string {
	u := neturl.URL{Host: addr}
	return u.Hostname()
}

// Instrument records each command or pipeline the client sends as a span of the trace it is
// sent in (none outside a trace: probes and background loops stay untraced). Statements are
// left out: their arguments are ticket data and, for AUTH, a password. A cluster client traces
// each node it learns of.
func Instrument(c redis.UniversalClient, tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(telemetry.ChildOnly(tp)),
		redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false), redisotel.WithDialFilter(true)); err != nil {
		return fmt.Errorf("redis tracing: %w", err)
	}
	return nil
}

// LogTo sends go-redis's own messages, such as its pool's failed dials, to log at WARN instead of
// the standard logger, so they reach the structured logs with the service's attributes. go-redis
// keeps one logger per process: the last call wins.
func LogTo(log *slog.Logger) { redis.SetLogger(clientLog{log}) }

type clientLog struct{ log *slog.Logger }

func (l clientLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
}
