package measure

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// Rate is a throughput figure: Ops operations in Seconds.
type Rate struct {
	Ops     int64   `json:"ops"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_sec"`
	// Note says what was measured, for the report.
	Note string `json:"note"`
}

func newRate(ops int64, d time.Duration, note string) *Rate {
	return &Rate{Ops: ops, Seconds: d.Seconds(), PerSec: float64(ops) / d.Seconds(), Note: note}
}

// RawStream is the scratch stream the JetStream limit is measured on; it is deleted afterwards.
const RawStream = "LOADGEN_RAW"

// JetStreamRaw measures the server's async publish rate: msgs messages of size bytes (each with
// a unique Nats-Msg-Id, as ingest sends them, so duplicate tracking costs the same) to a scratch
// file stream, at most maxPending unacknowledged, stopping early at the time limit.
func JetStreamRaw(ctx context.Context, nc *nats.Conn, msgs, size, maxPending int, limit time.Duration) (*Rate, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPending))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	cfg := jetstream.StreamConfig{
		Name:       RawStream,
		Subjects:   []string{"loadgen.raw.>"},
		Storage:    jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("create stream %s: %w", RawStream, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, RawStream)
	}()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	var acked, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	start := time.Now()
	deadline := start.Add(limit)
	sent := 0
	futures := make([]jetstream.PubAckFuture, 0, maxPending)
	collect := func(f jetstream.PubAckFuture) {
		select {
		case <-f.Ok():
			acked.Add(1)
		case err := <-f.Err():
			failed.Add(1)
			errOnce.Do(func() { firstErr = err })
		}
	}
	for sent < msgs && time.Now().Before(deadline) && ctx.Err() == nil {
		m := nats.NewMsg("loadgen.raw.agent_message")
		m.Data = payload
		m.Header.Set(jetstream.MsgIDHeader, id+"-"+strconv.Itoa(sent))
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return nil, fmt.Errorf("publish to %s: %w", RawStream, err)
		}
		sent++
		futures = append(futures, f)
		if len(futures) == cap(futures) {
			// Waiting on the oldest half keeps the window full without a callback per message.
			for _, f := range futures[:len(futures)/2] {
				collect(f)
			}
			futures = append(futures[:0], futures[len(futures)/2:]...)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return nil, errors.New("jetstream raw publish: acknowledgements still pending after 30s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for _, f := range futures {
		collect(f)
	}
	elapsed := time.Since(start)
	if failed.Load() > 0 {
		return nil, fmt.Errorf("jetstream raw publish: %d of %d not acknowledged: %w", failed.Load(), sent, firstErr)
	}
	return newRate(acked.Load(), elapsed, fmt.Sprintf("%d B messages, async, ≤%d in flight", size, maxPending)), nil
}

// rawScript is the shape of a KPI update: increment a field of three hashes of one slot.
const rawScript = `
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
return 1`

// RedisRawPrefix starts every key the Redis measurement writes; they are deleted afterwards.
const RedisRawPrefix = "tp:loadgen-raw:"

// RedisRaw measures pipelined EVALSHA of a small script touching three keys of one hash slot:
// conns connections each sending pipelines of depth scripts, spread over slots scopes, until the
// time limit.
func RedisRaw(ctx context.Context, rdb *redis.Client, conns, depth, slots int, limit time.Duration) (*Rate, error) {
	sha, err := rdb.ScriptLoad(ctx, rawScript).Result()
	if err != nil {
		return nil, fmt.Errorf("load script: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = deleteByPrefix(dctx, rdb, RedisRawPrefix)
	}()
	keys := make([][]string, slots)
	for i := range keys {
		tag := "{bench:a:agent-" + strconv.Itoa(i) + "}"
		keys[i] = []string{RedisRawPrefix + tag + ":h", RedisRawPrefix + tag + ":d", RedisRawPrefix + tag + ":w"}
	}
	var done atomic.Int64
	start := time.Now()
	deadline := start.Add(limit)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			n := c
			for time.Now().Before(deadline) && ctx.Err() == nil {
				pipe := rdb.Pipeline()
				for range depth {
					k := keys[n%slots]
					pipe.EvalSha(ctx, sha, k, strconv.Itoa(n%24)+"|count", n%97)
					n++
				}
				if _, err := pipe.Exec(ctx); err != nil {
					errs[c] = fmt.Errorf("pipeline of %d EVALSHA: %w", depth, err)
					return
				}
				done.Add(int64(depth))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return newRate(done.Load(), time.Since(start), fmt.Sprintf("EVALSHA 3×HINCRBY one slot, pipelines of %d on %d connections", depth, conns)), nil
}

func deleteByPrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rdb.Unlink(ctx, batch...).Err()
	}
	return nil
}
