// Package watermark notices when Redis lost writes that a durable JetStream consumer had already
// acknowledged, and replays the lost range of the stream through the consumer's own handler.
//
// Redis with AOF everysec, or a failover to a replica, can lose a suffix of its write history:
// the last second of writes is gone, and the JetStream messages that caused them were acked, so
// nothing would redeliver them. The consumer's handlers are idempotent, so replaying a message is
// always safe; what is needed is to know which messages to replay.
//
// # What is recorded
//
// For one durable, every Interval a Watcher reads the durable's ack floor A (consumer info,
// stream sequence), then runs one script on the hash Key(service, durable) that stores w =
// max(w, A). The consumer acks a message only after its Redis writes completed, and A was read
// after those acks, so every write of every message <= A was executed by Redis before the script
// that stored A. Redis applies commands in one order and any copy it restarts from (its AOF,
// an RDB, a promoted replica) holds a prefix of that order: a copy whose hash holds w also holds
// every write of every message <= w. The writes that may be missing are those of messages > w.
//
// # When it replays
//
// The script also stores Redis's run_id (INFO server) in the hash. Losing writes takes a restart
// or a failover, both of which change the run_id, so a tick that finds another run_id in the hash
// knows the data may be older than it looks, even when the last watermark write survived and
// only later data writes were lost. The same is assumed when w is lower than what this process
// last saw, and always on a Watcher's first tick (Redis may have been restored while the process
// was down). The script then records a gap (w, A] in the hash instead of advancing w; the
// detecting Watcher widens it to the durable's last delivered sequence read after the script
// (a message written before the loss but acked after A was read was delivered before the
// loss), and one Watcher, holding a lease in the hash, replays the gap with an ordered consumer
// (no acks, the durable's filter) in batches of BatchMax, concurrently with live consumption.
// After each replayed batch, w advances to the batch's last sequence, but only if Redis is still
// the same run and the gap unchanged: a crash or another loss during a replay leaves the gap in
// place and the next tick of any replica picks it up from the last advanced w. While a gap is
// open no tick advances w, so w never claims a write that is not in Redis.
//
// Several replicas sharing a durable share the hash: the first tick after a loss records the
// gap and the new run_id, so the others see no new loss, and the lease keeps one of them
// replaying at a time. A replica that dies while replaying lets its lease lapse (Lease) and
// another one goes on.
//
// A missing hash while A > 0 (Redis emptied, or the first start of a version that records
// watermarks) is handled by the Config's Missing policy: ReplayAll replays the whole stream (what
// it still holds), Adopt takes A as the watermark and replays nothing.
//
// A failing replay batch is retried with a backoff, never skipped (the Replay function decides
// what a message that can never be handled means). Every gap found is logged at WARN with
// durable, from, to and count, and counted in watermark_replays_total{durable} (the small
// replay at a start, Redis being the same run, is logged at INFO and not counted); replayed
// messages in watermark_replayed_messages_total{durable}; watermark_lag{durable} is the stored
// watermark's distance behind the ack floor, in stream sequences.
//
// The Redis user needs the hash and INFO's server section (+info|server); the scripts take the
// lease clock from the caller, as TIME is not among a service user's commands. The NATS user
// needs ordered consumers (generated names) on the stream.
//
// Redis Cluster: a hash records the run_id of the node holding its slot only, so each master
// keeps its own (ShardTags picks a hash tag {wm:<n>} in a slot of each master, Config.Shard):
// a failover of any shard changes that shard's run_id, and the gap from that shard's watermark
// is replayed. A master's copy holds every one of its own writes of the messages up to its
// watermark, which is all the argument above needs. The tags are picked when the consumer
// starts; after slots move between masters (resharding), restart the services.
package watermark

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Policy says what a Watcher does when the watermark hash is missing while the durable has
// acknowledged messages.
type Policy int

const (
	// ReplayAll replays every message the stream still holds up to the ack floor: right for
	// derived state whose writes are idempotent (KPIs, escalations). The zero value: nothing
	// acknowledged is lost.
	ReplayAll Policy = iota
	// Adopt takes the ack floor as the watermark, replays nothing and warns: right where a
	// replay has effects outside Redis that must not repeat (notifications).
	Adopt
)

// String names the policy in logs.
func (p Policy) String() string {
	if p == Adopt {
		return "adopt"
	}
	return "replay-all"
}

// DefaultInterval is how often a Watcher ticks when Config.Interval is not set.
const DefaultInterval = time.Second

// Replay handles messages again, as the live consumer would (decode and handle, no acks). An
// error means the batch is not done: it is retried after a backoff.
type Replay func(ctx context.Context, msgs []jetstream.Msg) error

// Client is what a Watcher needs of Redis (every go-redis client has it).
type Client interface {
	redis.Scripter
}

// Config names one durable consumer and tunes its watermark.
type Config struct {
	// Service, Durable and Shard name the hash: ShardKey(Service, Durable, Shard).
	Service string
	// Shard is the hash tag suffix of a Redis Cluster master's watermark (ShardTags); "" for
	// one server.
	Shard   string
	Stream  string
	Durable string
	// Filter is the durable's filter subject; the replay reads the same messages.
	Filter string
	// Interval between ticks; DefaultInterval when <= 0.
	Interval time.Duration
	// Missing is what a missing hash means (see Policy).
	Missing Policy
	// BatchMax bounds a replay batch (default 256).
	BatchMax int
	// Lease is how long a replica's claim to replay a gap lasts without a tick renewing it
	// (default 10 intervals, at least 10s).
	Lease time.Duration
}

// Key is the Redis hash holding the watermark of a service's durable.
func Key(service, durable string) string { return ShardKey(service, durable, "") }

// ShardKey is Key of one Redis Cluster master, shard being one of ShardTags.
func ShardKey(service, durable, shard string) string {
	return "tp:{wm" + shard + "}:" + service + ":" + durable
}

// ShardTags are the watermarks to keep for c: one ("") unless c is a cluster client; then one
// per master, ":<n>" with the lowest n whose hash tag {wm:<n>} falls in a slot that master
// serves, so each master holds (and checks against its own run_id) a watermark.
func ShardTags(ctx context.Context, c Client) ([]string, error) {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return []string{""}, nil
	}
	shards, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("watermark shards: %w", err)
	}
	ranges := map[string][][2]int{}
	var masters []string
	for _, s := range shards {
		if len(s.Nodes) == 0 {
			continue
		}
		id := s.Nodes[0].ID
		if _, ok := ranges[id]; !ok {
			masters = append(masters, id)
		}
		ranges[id] = append(ranges[id], [2]int{s.Start, s.End})
	}
	// In slot order, so replicas of a service pick the same tags.
	sort.Slice(masters, func(i, j int) bool { return ranges[masters[i]][0][0] < ranges[masters[j]][0][0] })
	tags := make([]string, 0, len(masters))
	for _, m := range masters {
		for n := 0; ; n++ {
			tag := ":" + strconv.Itoa(n)
			if inRanges(slot("wm"+tag), ranges[m]) {
				tags = append(tags, tag)
				break
			}
		}
	}
	return tags, nil
}

func inRanges(s int, rs [][2]int) bool {
	for _, r := range rs {
		if r[0] <= s && s <= r[1] {
			return true
		}
	}
	return false
}

// slot is the Redis Cluster hash slot of a hash tag: CRC16 (XMODEM) modulo 16384.
func slot(tag string) int {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// Watcher keeps one durable's watermark and replays what Redis lost.
type Watcher struct {
	js     jetstream.JetStream
	rdb    Client
	cfg    Config
	replay Replay
	log    *slog.Logger
	owner  string
	attrs  metric.MeasurementOption

	replays, replayed metric.Int64Counter
	lag               metric.Int64Gauge

	mu        sync.Mutex
	started   bool  // a tick succeeded since New
	last      int64 // the watermark the last tick left in Redis
	replaying bool
}

// New returns a Watcher; replay handles the messages of a gap. The metrics are created on meter.
func New(js jetstream.JetStream, rdb Client, cfg Config, replay Replay, meter metric.Meter, log *slog.Logger) (*Watcher, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.BatchMax < 1 {
		cfg.BatchMax = 256
	}
	if cfg.Lease <= 0 {
		cfg.Lease = max(10*cfg.Interval, 10*time.Second)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	attrs := []attribute.KeyValue{attribute.String("durable", cfg.Durable)}
	if cfg.Shard != "" {
		attrs = append(attrs, attribute.String("shard", cfg.Shard))
		log = log.With("watermark_shard", cfg.Shard)
	}
	w := &Watcher{js: js, rdb: rdb, cfg: cfg, replay: replay, log: log, owner: hex.EncodeToString(id[:]),
		attrs: metric.WithAttributes(attrs...)}
	var err error
	if w.replays, err = meter.Int64Counter("watermark_replays_total",
		metric.WithDescription("Gaps between the Redis watermark and the durable's deliveries found after Redis restarted, failed over, went back or was emptied, and replayed from the stream (the small replay at a start is not counted).")); err != nil {
		return nil, fmt.Errorf("watermark metrics: %w", err)
	}
	if w.replayed, err = meter.Int64Counter("watermark_replayed_messages_total",
		metric.WithDescription("Stream messages handled again by a watermark replay.")); err != nil {
		return nil, fmt.Errorf("watermark metrics: %w", err)
	}
	if w.lag, err = meter.Int64Gauge("watermark_lag",
		metric.WithDescription("Stream sequences between the durable's ack floor and the watermark stored in Redis at the last tick; it grows while a gap is being replayed.")); err != nil {
		return nil, fmt.Errorf("watermark metrics: %w", err)
	}
	return w, nil
}

// State is what one tick found and left.
type State struct {
	// AckFloor is the durable's ack floor the tick read.
	AckFloor uint64
	// Found is the watermark the hash held before the tick; -1 when it was missing.
	Found int64
	// Watermark and Gap are what the hash holds after the tick: the writes of messages in
	// (Watermark, Gap] may be missing from Redis and are being replayed (Gap 0: none).
	Watermark, Gap uint64
	// Status is "ok", "drop" (Redis restarted, failed over or went back: writes may be lost),
	// "start" (this Watcher's first tick, Redis the same run: the messages delivered since the
	// last watermark are replayed, in case), "missing" (no hash, ReplayAll) or "adopted" (no
	// hash, Adopt).
	Status string
	// Mine says this Watcher holds the lease to replay the gap.
	Mine bool
}

// Run ticks every Interval until ctx ends, starting replays in the background; it returns once
// a running replay has stopped too.
func (w *Watcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	failing := 0
	for {
		st, err := w.tick(ctx)
		if err == nil && failing > 0 {
			w.log.Info("watermark ticks again", "durable", w.cfg.Durable, "failed_ticks", failing)
			failing = 0
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			// An outage fails every tick: one line when it starts, then one a minute or so.
			if failing%60 == 0 {
				w.log.Warn("watermark tick", "durable", w.cfg.Durable, "failed_ticks", failing+1, "err", err)
			}
			failing++
		case st.Mine && w.claimReplay():
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer w.endReplay()
				if err := w.replayGap(ctx, st); err != nil && ctx.Err() == nil {
					w.log.Warn("watermark replay stopped; the next tick goes on", "durable", w.cfg.Durable, "err", err)
				}
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check runs one tick and, when it leaves a gap this Watcher holds the lease for, replays it
// before returning. It is Run's step for tests and tools; do not mix it with a running Run of
// the same Watcher.
func (w *Watcher) Check(ctx context.Context) (State, error) {
	st, err := w.tick(ctx)
	if err != nil || !st.Mine {
		return st, err
	}
	return st, w.replayGap(ctx, st)
}

func (w *Watcher) claimReplay() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.replaying {
		return false
	}
	w.replaying = true
	return true
}

func (w *Watcher) endReplay() {
	w.mu.Lock()
	w.replaying = false
	w.mu.Unlock()
}

// The scripts' last ARGV is the caller's clock in ms, for leases: TIME is not among the commands
// a service's Redis user may run, and a skewed clock only lets a lease lapse early or late (a
// replay done twice, or a little later), never a gap closed that was not replayed.
//
// tickScript: ARGV ack floor, forced (1 on a Watcher's first tick), the watermark this Watcher
// last saw, owner, lease ms, adopt (1 for Adopt). Returns found (-1 missing), w, gap, mine, status.
var tickScript = redis.NewScript(`
local now = tonumber(ARGV[#ARGV])
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local a = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'w', 'gap', 'run', 'owner', 'until')
local found = tonumber(h[1])
local w = found
local gap = tonumber(h[2]) or 0
local status = 'ok'
if not w then
  found = -1
  w = 0
  gap = 0
  if a > 0 and ARGV[6] == '1' then
    w = a
    status = 'adopted'
  elseif a > 0 then
    gap = a
    status = 'missing'
  end
elseif h[3] ~= run or w < tonumber(ARGV[3]) then
  status = 'drop'
  if a > gap then gap = a end
elseif ARGV[2] == '1' then
  status = 'start'
  if a > gap then gap = a end
end
local owner, till, mine = h[4] or '', tonumber(h[5]) or 0, 0
if gap > w then
  if owner == ARGV[4] or owner == '' or till < now then
    owner = ARGV[4]
    till = now + tonumber(ARGV[5])
    mine = 1
  end
else
  gap, owner, till = 0, '', 0
  if a > w then w = a end
end
redis.call('HSET', KEYS[1], 'w', w, 'gap', gap, 'run', run, 'owner', owner, 'until', till)
return {found, w, gap, mine, status}
`)

// widenScript: ARGV the durable's last delivered sequence, owner, lease ms. Widens an open gap
// (or opens one above w) so it covers every message delivered before the loss was noticed.
var widenScript = redis.NewScript(`
local now = tonumber(ARGV[#ARGV])
local d = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'w', 'gap', 'owner', 'until')
local w, gap = tonumber(h[1]), tonumber(h[2]) or 0
if not w then return {0, 0, 0} end
if d > w and d > gap then gap = d end
local owner, till, mine = h[3] or '', tonumber(h[4]) or 0, 0
if gap > w and (owner == ARGV[2] or owner == '' or till < now) then
  owner = ARGV[2]
  till = now + tonumber(ARGV[3])
  mine = 1
end
redis.call('HSET', KEYS[1], 'gap', gap, 'owner', owner, 'until', till)
return {w, gap, mine}
`)

// advanceScript: ARGV owner, the gap being replayed, the sequence replayed up to, lease ms.
// Advances w only while this owner replays the same gap on the same Redis run; returns 1 while
// the replay may go on, 2 when the gap is closed, 0 when it must stop.
var advanceScript = redis.NewScript(`
local now = tonumber(ARGV[#ARGV])
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local h = redis.call('HMGET', KEYS[1], 'w', 'gap', 'run', 'owner')
local w, gap = tonumber(h[1]), tonumber(h[2])
if not w or h[3] ~= run or h[4] ~= ARGV[1] or gap ~= tonumber(ARGV[2]) then return 0 end
local to = tonumber(ARGV[3])
if to > w then w = to end
if w >= gap then
  redis.call('HSET', KEYS[1], 'w', w, 'gap', 0, 'owner', '', 'until', 0)
  return 2
end
redis.call('HSET', KEYS[1], 'w', w, 'until', now + tonumber(ARGV[4]))
return 1
`)

func (w *Watcher) key() string { return ShardKey(w.cfg.Service, w.cfg.Durable, w.cfg.Shard) }

func (w *Watcher) info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	c, err := w.js.Consumer(ctx, w.cfg.Stream, w.cfg.Durable)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", w.cfg.Durable, w.cfg.Stream, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer %s info: %w", w.cfg.Durable, err)
	}
	return info, nil
}

// tick reads the ack floor, records it and reports the gap the hash holds.
func (w *Watcher) tick(ctx context.Context) (State, error) {
	info, err := w.info(ctx)
	if err != nil {
		return State{}, err
	}
	st := State{AckFloor: info.AckFloor.Stream}
	w.mu.Lock()
	forced, last := !w.started, w.last
	w.mu.Unlock()
	adopt := 0
	if w.cfg.Missing == Adopt {
		adopt = 1
	}
	res, err := tickScript.Run(ctx, w.rdb, []string{w.key()}, st.AckFloor, b2i(forced), last, w.owner,
		w.cfg.Lease.Milliseconds(), adopt, time.Now().UnixMilli()).Slice()
	if err != nil {
		return State{}, fmt.Errorf("watermark %s: %w", w.key(), err)
	}
	st.Found, st.Watermark, st.Gap = res[0].(int64), uint64(res[1].(int64)), uint64(res[2].(int64))
	st.Mine, st.Status = res[3].(int64) == 1, res[4].(string)
	w.mu.Lock()
	w.started, w.last = true, int64(st.Watermark)
	w.mu.Unlock()

	switch st.Status {
	case "adopted":
		w.log.Warn("watermark missing; adopted the ack floor, nothing replayed", "durable", w.cfg.Durable,
			"policy", w.cfg.Missing.String(), "ack_floor", st.AckFloor)
	case "start":
		// Redis may have lost writes while no process watched it, yet it is the same run: the
		// usual case is a plain restart of the service, and the range is about one interval.
		if err := w.widen(ctx, &st); err != nil {
			return st, err
		}
		if st.Gap > st.Watermark {
			w.log.Info("watermark: replaying what was delivered since the last recorded watermark (start)", "durable", w.cfg.Durable,
				"from", st.Watermark+1, "to", st.Gap, "count", st.Gap-st.Watermark)
		}
	case "drop", "missing":
		if err := w.widen(ctx, &st); err != nil {
			return st, err
		}
		if st.Gap > st.Watermark {
			w.replays.Add(ctx, 1, w.attrs)
			reason := "redis restarted, failed over or went back"
			if st.Status == "missing" {
				reason = "watermark missing (redis emptied or first start); policy " + w.cfg.Missing.String()
			}
			w.log.Warn("watermark gap: redis may have lost acknowledged writes; replaying", "durable", w.cfg.Durable,
				"from", st.Watermark+1, "to", st.Gap, "count", st.Gap-st.Watermark, "reason", reason)
		}
	}
	w.lag.Record(ctx, int64(st.AckFloor)-int64(st.Watermark), w.attrs)
	return st, nil
}

// widen extends a new gap to the durable's last delivered sequence, read now that the loss is
// known: a message written before the loss and acked after the ack floor was read is <= it.
func (w *Watcher) widen(ctx context.Context, st *State) error {
	info, err := w.info(ctx)
	if err != nil {
		return err
	}
	res, err := widenScript.Run(ctx, w.rdb, []string{w.key()}, info.Delivered.Stream, w.owner, w.cfg.Lease.Milliseconds(),
		time.Now().UnixMilli()).Slice()
	if err != nil {
		return fmt.Errorf("watermark %s: widen: %w", w.key(), err)
	}
	st.Watermark, st.Gap, st.Mine = uint64(res[0].(int64)), uint64(res[1].(int64)), res[2].(int64) == 1
	w.mu.Lock()
	w.last = int64(st.Watermark)
	w.mu.Unlock()
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// errLost says the replay no longer owns its gap (another loss, another replica, the lease).
var errLost = errors.New("gap changed or lease lost")

// replayGap replays (st.Watermark, st.Gap] and advances the watermark batch by batch.
func (w *Watcher) replayGap(ctx context.Context, st State) error {
	start := time.Now()
	from, to := st.Watermark+1, st.Gap
	n, err := w.replayRange(ctx, from, to, st.Gap)
	if err != nil {
		return fmt.Errorf("replay %s (%d..%d) after %d messages: %w", w.cfg.Durable, from, to, n, err)
	}
	w.log.Info("watermark gap replayed", "durable", w.cfg.Durable, "from", from, "to", to, "messages", n,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (w *Watcher) replayRange(ctx context.Context, from, to, gap uint64) (int, error) {
	st, err := w.js.Stream(ctx, w.cfg.Stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", w.cfg.Stream, err)
	}
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{w.cfg.Filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return 0, fmt.Errorf("ordered consumer on %s: %w", w.cfg.Stream, err)
	}
	n := 0
	for {
		batch, end, err := w.fetch(ctx, oc, to)
		if err != nil {
			return n, err
		}
		if len(batch) > 0 {
			if err := w.handle(ctx, batch); err != nil {
				return n, err
			}
			n += len(batch)
			w.replayed.Add(ctx, int64(len(batch)), w.attrs)
		}
		upTo := to
		if !end {
			md, _ := batch[len(batch)-1].Metadata()
			upTo = md.Sequence.Stream
			end = upTo >= to
		}
		ok, err := w.advance(ctx, gap, upTo)
		if err != nil {
			return n, err
		}
		if !ok {
			return n, errLost
		}
		if end {
			return n, nil
		}
	}
}

// fetch returns the next batch of messages <= to, and whether no more follow up to to.
func (w *Watcher) fetch(ctx context.Context, oc jetstream.Consumer, to uint64) ([]jetstream.Msg, bool, error) {
	for attempt := 0; ; attempt++ {
		// What is stored now, not a wait for a full batch: the range is already in the stream.
		mb, err := oc.FetchNoWait(w.cfg.BatchMax)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			w.log.Warn("watermark replay fetch", "durable", w.cfg.Durable, "err", err)
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return nil, false, err
			}
			continue
		}
		var batch []jetstream.Msg
		end := false
		for m := range mb.Messages() {
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > to {
				end = true
				continue
			}
			batch = append(batch, m)
			if md.NumPending == 0 {
				end = true // the last message the filter matches in the stream
			}
		}
		if err := mb.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			w.log.Warn("watermark replay fetch", "durable", w.cfg.Durable, "err", err)
		}
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if len(batch) > 0 || end {
			return batch, end, nil
		}
		// Nothing came: either nothing the filter matches is left in the stream, or the server
		// was slow. The consumer's pending count tells which.
		info, err := oc.Info(ctx)
		if err == nil && info.NumPending == 0 {
			return nil, true, nil
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return nil, false, err
		}
	}
}

// handle runs the replay of one batch until it succeeds or ctx ends: a failing batch is retried,
// never skipped.
func (w *Watcher) handle(ctx context.Context, batch []jetstream.Msg) error {
	for attempt := 0; ; attempt++ {
		err := w.replay(ctx, batch)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		first, _ := batch[0].Metadata()
		w.log.Warn("watermark replay batch failed; retrying", "durable", w.cfg.Durable, "first", first.Sequence.Stream,
			"messages", len(batch), "attempt", attempt+1, "err", err)
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

func (w *Watcher) advance(ctx context.Context, gap, upTo uint64) (bool, error) {
	for attempt := 0; ; attempt++ {
		r, err := advanceScript.Run(ctx, w.rdb, []string{w.key()}, w.owner, gap, upTo, w.cfg.Lease.Milliseconds(),
			time.Now().UnixMilli()).Int()
		if err == nil {
			if r == 2 || r == 1 {
				w.mu.Lock()
				w.last = max(w.last, int64(min(upTo, gap)))
				w.mu.Unlock()
			}
			return r != 0, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		w.log.Warn("watermark advance", "durable", w.cfg.Durable, "err", err)
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return false, err
		}
	}
}

// backoff grows from 100ms to 10s.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond
	for range min(attempt, 7) {
		d *= 2
	}
	return min(d, 10*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
