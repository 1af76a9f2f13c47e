package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// SealWeek seals week (see sealScript) for every scope of the tenant credited with anything in
// it, and returns how many it sealed now. Sealing is idempotent, so every replica may run it.
func (w *Writer) SealWeek(ctx context.Context, tenant string, week int64) (int, error) {
	first := bucket.FirstDayOfWeek(week)
	var agentKeys, teamKeys []string
	for d := first; d < first+7; d++ {
		agentKeys = append(agentKeys, bucket.AgentsKey(tenant, d))
		teamKeys = append(teamKeys, bucket.TeamsKey(tenant, d))
	}
	pipe := w.rdb.Pipeline()
	agents := pipe.SUnion(ctx, agentKeys...)
	teams := pipe.SUnion(ctx, teamKeys...)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("scopes of tenant %s week %d: %w", tenant, week, err)
	}
	scopes := []bucket.Scope{{Kind: bucket.Unassigned}}
	for _, set := range []struct {
		kind   bucket.Kind
		tokens []string
	}{{bucket.Agent, agents.Val()}, {bucket.Team, teams.Val()}} {
		for _, tok := range set.tokens {
			id, err := idtoken.Unescape(tok)
			if err != nil {
				return 0, fmt.Errorf("index of tenant %s week %d: %q: %w", tenant, week, tok, err)
			}
			scopes = append(scopes, bucket.Scope{Kind: set.kind, ID: id})
		}
	}
	expireAt := int64(0)
	if w.retention > 0 {
		expireAt = time.Unix((first+7)*86400, 0).Add(w.retention).Unix()
	}
	cmds := make([]*redis.Cmd, len(scopes))
	_, err := w.exec(ctx, func(pipe redis.Pipeliner) {
		for i, s := range scopes {
			keys := []string{bucket.WeekKey(tenant, s, week)}
			for d := first; d < first+7; d++ {
				keys = append(keys, bucket.DayKey(tenant, s, d))
			}
			cmds[i] = sealScript.EvalSha(ctx, pipe, keys, expireAt)
		}
	})
	if err != nil {
		return 0, fmt.Errorf("seal tenant %s week %d: %w", tenant, week, err)
	}
	sealed := 0
	for _, c := range cmds {
		if n, _ := c.Int(); n == 1 {
			sealed++
		}
	}
	return sealed, nil
}

// SealPending seals, for every tenant, the weeks that wait for it and the week that ended last.
// It returns the number of week hashes sealed.
func (w *Writer) SealPending(ctx context.Context) (int, error) {
	tenants, err := w.rdb.SMembers(ctx, bucket.TenantsKey).Result()
	if err != nil {
		return 0, fmt.Errorf("list tenants: %w", err)
	}
	lastEnded := bucket.WeekOf(w.now().UTC().Unix()/86400) - 1
	total := 0
	for _, tenant := range tenants {
		weeks, err := w.rdb.SMembers(ctx, bucket.ToSealKey(tenant)).Result()
		if err != nil {
			return total, fmt.Errorf("weeks to seal of tenant %s: %w", tenant, err)
		}
		todo := map[int64]string{lastEnded: ""}
		for _, s := range weeks {
			wk, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return total, fmt.Errorf("weeks to seal of tenant %s: %q: %w", tenant, s, err)
			}
			todo[wk] = s
		}
		for wk, member := range todo {
			n, err := w.SealWeek(ctx, tenant, wk)
			if err != nil {
				return total, err
			}
			total += n
			if member != "" {
				if err := w.rdb.SRem(ctx, bucket.ToSealKey(tenant), member).Err(); err != nil {
					return total, fmt.Errorf("weeks to seal of tenant %s: %w", tenant, err)
				}
			}
		}
	}
	return total, nil
}
