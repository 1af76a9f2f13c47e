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

// SealLookback is how many ended weeks the rollup keeps sealed for every known agent and team,
// idle ones included: enough for any rolling window (30 days) to read sealed weeks only.
const SealLookback = 6

// scopes lists every agent and team the tenant ever had, and the unassigned figures.
func (w *Writer) scopes(ctx context.Context, tenant string) ([]bucket.Scope, error) {
	pipe := w.rdb.Pipeline()
	agents := pipe.SMembers(ctx, bucket.AllAgentsKey(tenant))
	teams := pipe.SMembers(ctx, bucket.AllTeamsKey(tenant))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("scopes of tenant %s: %w", tenant, err)
	}
	scopes := []bucket.Scope{{Kind: bucket.Unassigned}}
	for _, set := range []struct {
		kind   bucket.Kind
		tokens []string
	}{{bucket.Agent, agents.Val()}, {bucket.Team, teams.Val()}} {
		for _, tok := range set.tokens {
			id, err := idtoken.Unescape(tok)
			if err != nil {
				return nil, fmt.Errorf("scopes of tenant %s: %q: %w", tenant, tok, err)
			}
			scopes = append(scopes, bucket.Scope{Kind: set.kind, ID: id})
		}
	}
	return scopes, nil
}

// sealWeek seals week (see sealScript) for the given scopes of the tenant and returns how many
// week hashes it sealed now. Sealing is idempotent, so every replica may run it.
func (w *Writer) sealWeek(ctx context.Context, tenant string, scopes []bucket.Scope, week int64) (int, error) {
	first := bucket.FirstDayOfWeek(week)
	expireAt := int64(0)
	if w.retention > 0 {
		expireAt = time.Unix((first+7)*86400, 0).Add(w.retention).Unix()
	}
	sealed := 0
	// Small pipelines: a sealing script reads seven hashes, and a long run of them would stall
	// the queries and writes that share the server.
	const chunk = 100
	for start := 0; start < len(scopes); start += chunk {
		part := scopes[start:min(start+chunk, len(scopes))]
		cmds := make([]*redis.Cmd, len(part))
		_, err := w.exec(ctx, func(pipe redis.Pipeliner) {
			for i, s := range part {
				keys := []string{bucket.WeekKey(tenant, s, week)}
				for d := first; d < first+7; d++ {
					keys = append(keys, bucket.DayKey(tenant, s, d))
				}
				cmds[i] = sealScript.EvalSha(ctx, pipe, keys, expireAt)
			}
		})
		if err != nil {
			return sealed, fmt.Errorf("seal tenant %s week %d: %w", tenant, week, err)
		}
		for _, c := range cmds {
			if n, _ := c.Int(); n == 1 {
				sealed++
			}
		}
	}
	return sealed, nil
}

// SealPending seals, for every tenant, the weeks that got figures after they ended and the last
// SealLookback ended weeks. It returns the number of week hashes sealed.
func (w *Writer) SealPending(ctx context.Context) (int, error) {
	tenants, err := w.rdb.SMembers(ctx, bucket.TenantsKey).Result()
	if err != nil {
		return 0, fmt.Errorf("list tenants: %w", err)
	}
	lastEnded := bucket.WeekOf(w.now().UTC().Unix()/86400) - 1
	total := 0
	for _, tenant := range tenants {
		queued, err := w.rdb.SMembers(ctx, bucket.ToSealKey(tenant)).Result()
		if err != nil {
			return total, fmt.Errorf("weeks to seal of tenant %s: %w", tenant, err)
		}
		todo := map[int64]string{}
		for wk := lastEnded - SealLookback + 1; wk <= lastEnded; wk++ {
			todo[wk] = ""
		}
		for _, s := range queued {
			wk, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return total, fmt.Errorf("weeks to seal of tenant %s: %q: %w", tenant, s, err)
			}
			todo[wk] = s
		}
		// The lookback weeks only need sealing again when a scope appeared since the last pass;
		// the scope count (with the unassigned figures) tells.
		scopes, err := w.scopes(ctx, tenant)
		if err != nil {
			return total, err
		}
		count := int64(len(scopes))
		for wk, member := range todo {
			key := tenant + "/" + strconv.FormatInt(wk, 10)
			if member == "" && w.sealedScopes[key] == count {
				continue
			}
			n, err := w.sealWeek(ctx, tenant, scopes, wk)
			if err != nil {
				return total, err
			}
			total += n
			w.sealedScopes[key] = count
			if member != "" {
				if err := w.rdb.SRem(ctx, bucket.ToSealKey(tenant), member).Err(); err != nil {
					return total, fmt.Errorf("weeks to seal of tenant %s: %w", tenant, err)
				}
			}
		}
	}
	return total, nil
}
