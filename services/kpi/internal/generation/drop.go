package generation

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
)

// Other services keep keys under the same tenant hash tags (escalation's tp:{acme:t:X}:esc:ev and
// tp:{acme:a:X}:e:<rule>, tp:{acme:ix}:esc, notify's tp:{acme:ng:...}), so a generation is deleted
// by its key kinds, not by a prefix: SCAN narrows by pattern, and each key found is deleted only
// when it matches exactly one of kpi's key kinds (package store and package bucket):
//
//	tp:{K:t:<ticket>}                                        ticket state
//	tp:{K:a:<id>}: tp:{K:g:<id>}: tp:{K:q:<id>}: tp:{K:u}:  +  h:<day> dt:<day> wt:<w> mt:<m> yt:<y> m:<day> k:<day> ff gen
//	tp:{K:k}:  +  k:<day> m:<day>  (the tenant's drill-down index)
//	tp:{K:ix}:  +  a:<day> g:<day> q:<day> ga:<team>:<day> toseal topack tomonth toyear allagents allteams allqueues gen
//
// The escaped ids never hold '}' (package idtoken), so a ticket or scope tag ends at the first '}'.
const (
	scopeSuffix = `(h:-?\d+|k:-?\d+|dt:-?\d+|wt:-?\d+|mt:-?\d+|yt:-?\d+|m:-?\d+|ff|gen)`
	indexSuffix = `(a:-?\d+|g:-?\d+|q:-?\d+|ga:[^}]*:-?\d+|toseal|topack|tomonth|toyear|allagents|allteams|allqueues|gen|resolved)`
)

// kpiKey returns the matcher of the kpi keys of keyspace ks.
func kpiKey(ks string) *regexp.Regexp {
	q := regexp.QuoteMeta(ks)
	return regexp.MustCompile(`^tp:\{` + q + `:(` +
		`t:[^}]*\}` +
		`|[agq]:[^}]*\}:` + scopeSuffix +
		`|[uk]\}:` + scopeSuffix +
		`|ix\}:` + indexSuffix + `)$`)
}

// pattern is the SCAN pattern that covers every kpi key of ks, and other services' keys under the
// same tags, which kpiKey then rejects: one walk of the keyspace instead of one per key kind.
func pattern(ks string) string { return "tp:{" + ks + ":*" }

// dropBatch bounds the keys asked for per SCAN call and deleted per round trip.
const dropBatch = 500

// Drop deletes every kpi key of keyspace ks and removes it from the rollup's tenant list; it
// returns how many keys it deleted. Keys of other services under the same tags stay. It is
// idempotent, so a job that crashed while dropping simply runs it again. progress, when not nil,
// runs after every batch (to renew a lease); its error stops the drop.
func (s *Store) Drop(ctx context.Context, ks string, progress func() error) (int, error) {
	if strings.ContainsAny(ks, "*?[]\\{}") || ks == "" {
		return 0, fmt.Errorf("drop keyspace %q: not a keyspace", ks)
	}
	// Off the rollup's list first, so no pass that starts from now on derives totals into it.
	if err := s.Retire(ctx, ks); err != nil {
		return 0, err
	}
	match := kpiKey(ks)
	deleted := 0
	scanNode := func(ctx context.Context, node redis.UniversalClient) error {
		for _, pat := range []string{pattern(ks)} {
			var cursor uint64
			for {
				keys, next, err := node.Scan(ctx, cursor, pat, dropBatch).Result()
				if err != nil {
					return fmt.Errorf("scan %s: %w", pat, err)
				}
				var mine []string
				for _, k := range keys {
					if match.MatchString(k) {
						mine = append(mine, k)
					}
				}
				if len(mine) > 0 {
					// One UNLINK per key: on a cluster the keys live in many slots.
					pipe := s.rdb.Pipeline()
					for _, k := range mine {
						pipe.Unlink(ctx, k)
					}
					if _, err := pipe.Exec(ctx); err != nil {
						return fmt.Errorf("unlink %d keys of %s: %w", len(mine), ks, err)
					}
					deleted += len(mine)
				}
				if progress != nil {
					if err := progress(); err != nil {
						return err
					}
				}
				if cursor = next; cursor == 0 {
					break
				}
			}
		}
		return nil
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scanNode(ctx, node) })
	} else {
		err = scanNode(ctx, s.rdb)
	}
	if err != nil {
		return deleted, fmt.Errorf("drop keyspace %s: %w", ks, err)
	}
	// Again: a live batch that resolved the keyspace before the switch may have added it back.
	if err := s.Retire(ctx, ks); err != nil {
		return deleted, err
	}
	return deleted, nil
}

// Retire takes keyspace ks off the rollup's list (bucket.TenantsKey), so passes that start later
// derive no totals into it. The runner retires the old generation right at the switch: passes
// already running then end within the grace period, before the keys are deleted.
func (s *Store) Retire(ctx context.Context, ks string) error {
	if err := s.rdb.SRem(ctx, bucket.TenantsKey, ks).Err(); err != nil {
		return fmt.Errorf("take keyspace %s off the rollup's list: %w", ks, err)
	}
	return nil
}
