package measure

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Memory is what the stored events cost: Redis memory grown per event, and the JetStream log's
// bytes per message.
type Memory struct {
	UsedBefore      int64   `json:"used_memory_before"`
	UsedAfter       int64   `json:"used_memory_after"`
	DatasetBefore   int64   `json:"used_memory_dataset_before"`
	DatasetAfter    int64   `json:"used_memory_dataset_after"`
	Events          int     `json:"events"`
	BytesPerEvent   float64 `json:"bytes_per_event"`
	DatasetPerEvent float64 `json:"dataset_bytes_per_event"`
	Keys            int64   `json:"keys"`
	StreamMsgs      uint64  `json:"stream_msgs"`
	StreamBytes     uint64  `json:"stream_bytes"`
	StreamPerMsg    float64 `json:"stream_bytes_per_msg"`
}

type redisMemory struct {
	used, dataset int64
}

func readMemory(ctx context.Context, rdb *redis.Client) (redisMemory, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return redisMemory{}, fmt.Errorf("redis INFO memory: %w", err)
	}
	return parseMemory(info)
}

// parseMemory reads used_memory and used_memory_dataset from an INFO memory reply.
func parseMemory(info string) (redisMemory, error) {
	var m redisMemory
	found := 0
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "used_memory":
			dst = &m.used
		case "used_memory_dataset":
			dst = &m.dataset
		default:
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return m, fmt.Errorf("INFO memory %s=%q: %w", k, v, err)
		}
		*dst = n
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("INFO memory: used_memory or used_memory_dataset missing")
	}
	return m, nil
}

func (e *env) memoryAfter(ctx context.Context, before redisMemory, events int) (*Memory, error) {
	after, err := readMemory(ctx, e.rdb)
	if err != nil {
		return nil, err
	}
	keys, err := e.rdb.DBSize(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("redis DBSIZE: %w", err)
	}
	s, err := e.js.Stream(ctx, e.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", e.cfg.Stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", e.cfg.Stream, err)
	}
	m := &Memory{
		UsedBefore: before.used, UsedAfter: after.used,
		DatasetBefore: before.dataset, DatasetAfter: after.dataset,
		Events: events, Keys: keys,
		StreamMsgs: info.State.Msgs, StreamBytes: info.State.Bytes,
	}
	if events > 0 {
		m.BytesPerEvent = float64(after.used-before.used) / float64(events)
		m.DatasetPerEvent = float64(after.dataset-before.dataset) / float64(events)
	}
	if info.State.Msgs > 0 {
		m.StreamPerMsg = float64(info.State.Bytes) / float64(info.State.Msgs)
	}
	return m, nil
}
