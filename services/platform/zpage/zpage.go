// Package zpage pages through a Redis sorted set used as an index of records by time: newest
// (highest score) first, filtered, with a page token that stays valid while entries are added.
package zpage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrBadToken reports a page token List did not hand out.
var ErrBadToken = errors.New("malformed page token")

// chunk is how many index entries one round trip reads while a page fills.
const chunk = 256

// Query is one page's request.
type Query struct {
	// Key is the index: members are record ids, scores unix milliseconds.
	Key string
	// From and To bound the scores to [From, To); zero bounds are open.
	From, To time.Time
	Size     int
	Token    string
}

// List returns up to q.Size records, newest first, after q.Token, and the next page's token
// ("" after the last page). load reads records by id (nil for one that is gone); keep filters.
func List[T any](ctx context.Context, rdb redis.UniversalClient, q Query,
	load func(ctx context.Context, ids []string) ([]T, error), keep func(T) bool) ([]T, string, error) {
	maxScore, minScore := "+inf", "-inf"
	if !q.To.IsZero() {
		maxScore = "(" + strconv.FormatInt(q.To.UnixMilli(), 10)
	}
	if !q.From.IsZero() {
		minScore = strconv.FormatInt(q.From.UnixMilli(), 10)
	}
	var afterScore int64
	afterID := ""
	if q.Token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Token)
		sc, id, ok := strings.Cut(string(raw), "|")
		n, perr := strconv.ParseInt(sc, 10, 64)
		if err != nil || !ok || perr != nil || id == "" {
			return nil, "", ErrBadToken
		}
		afterScore, afterID, maxScore = n, id, sc
	}
	var out []T
	offset := int64(0)
	for {
		zs, err := rdb.ZRevRangeByScoreWithScores(ctx, q.Key, &redis.ZRangeBy{Max: maxScore, Min: minScore, Offset: offset, Count: chunk}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("read index %s: %w", q.Key, err)
		}
		offset += int64(len(zs))
		var ids []string
		var scores []int64
		for _, z := range zs {
			id, _ := z.Member.(string)
			// Entries of the token's own instant come before it only when their id sorts after
			// it (ZREVRANGE orders ties by member, descending).
			if afterID != "" && int64(z.Score) == afterScore && id >= afterID {
				continue
			}
			ids, scores = append(ids, id), append(scores, int64(z.Score))
		}
		recs, err := load(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		for i, r := range recs {
			if !keep(r) {
				continue
			}
			out = append(out, r)
			if len(out) == q.Size {
				if i == len(recs)-1 && len(zs) < chunk {
					return out, "", nil
				}
				return out, token(scores[i], ids[i]), nil
			}
		}
		if len(zs) < chunk {
			return out, "", nil
		}
	}
}

func token(score int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(score, 10) + "|" + id))
}
