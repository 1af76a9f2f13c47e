package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// notify keeps each receiver's group of pending changes in a hash tp:{<tenant>:ng:<group>} whose
// field p counts the changes not sent yet, and plans the group's send as the timer
// "g\x1f<tenant>\x1f<group>" in one of the sorted sets tp:notify:{tq:<n>}:due (or :lease while
// it is being handled; escalation's timers are tp:{tq:<n>}:*, on the same Redis Cluster). Only the change that makes p 1 plans the timer, so a group with changes
// pending and no timer is never sent: stuckGroups tells such a group from a delivery waiting for
// its retry, when notifications are missing at the end.
const (
	groupKeys  = "tp:{" + tenant + ":ng:*}"
	timerKeys  = "tp:notify:{tq:*}:*"
	timerIDSep = "\x1f"
)

// stuckGroups lists the tenant's notify groups with changes pending, each with whether a timer
// is planned for its send.
func stuckGroups(ctx context.Context, url string) (string, error) {
	rdb, err := redisClient(url)
	if err != nil {
		return "", err
	}
	defer rdb.Close()
	groups, err := scanKeys(ctx, rdb, groupKeys)
	if err != nil {
		return "", err
	}
	queues, err := scanKeys(ctx, rdb, timerKeys)
	if err != nil {
		return "", err
	}
	// The score of a due timer is its due time, of a lease its expiry, both in unix ms.
	planned := map[string]string{}
	now := time.Now()
	for _, q := range queues {
		set := "planned"
		switch {
		case strings.HasSuffix(q, ":due"):
		case strings.HasSuffix(q, ":lease"):
			set = "being sent, lease ends"
		default:
			continue
		}
		timers, err := rdb.ZRangeWithScores(ctx, q, 0, -1).Result()
		if err != nil {
			return "", fmt.Errorf("read timers %s: %w", q, err)
		}
		for _, z := range timers {
			id, _ := z.Member.(string)
			at := time.UnixMilli(int64(z.Score)).Sub(now).Round(100 * time.Millisecond)
			// A lease's member is "<claim seq>:<due ms>:<id>".
			if set != "planned" {
				if parts := strings.SplitN(id, ":", 3); len(parts) == 3 {
					id = parts[2]
				}
			}
			when := "in " + at.String()
			if at < 0 {
				when = (-at).String() + " ago"
			}
			planned[id] = fmt.Sprintf("send %s %s", set, when)
		}
	}
	var out []string
	sort.Strings(groups)
	for _, g := range groups {
		p, err := rdb.HGet(ctx, g, "p").Int()
		if err == redis.Nil || (err == nil && p == 0) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read group %s: %w", g, err)
		}
		gid := strings.TrimSuffix(strings.TrimPrefix(g, "tp:{"+tenant+":ng:"), "}")
		timer := "no send planned: stuck"
		if p, ok := planned["g"+timerIDSep+tenant+timerIDSep+gid]; ok {
			timer = p
		}
		out = append(out, fmt.Sprintf("%q %d pending, %s", gid, p, timer))
	}
	if len(out) == 0 {
		return "no group with changes pending", nil
	}
	return strings.Join(out, "; "), nil
}

// redisClient connects to the services' Redis URL: a cluster when it lists several nodes.
func redisClient(url string) (redis.UniversalClient, error) {
	if strings.Contains(url, "addr=") {
		o, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis cluster url: %w", err)
		}
		o.Protocol, o.DisableIdentity = 2, true
		return redis.NewClusterClient(o), nil
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	o.Protocol, o.DisableIdentity = 2, true
	return redis.NewClient(o), nil
}

// scanKeys lists the keys matching pattern on every master (SCAN on a cluster client asks one
// node only).
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val())
			mu.Unlock()
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("scan %s: %w", pattern, err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		err = fmt.Errorf("redis client %T", rdb)
	}
	return keys, err
}
