package escalations

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Filter selects escalations; zero fields match everything.
type Filter struct {
	State  tpv1.EscalationState
	Rule   string
	Team   string
	Agent  string
	Ticket string
	// From and To bound the trigger time, [From, To).
	From, To time.Time
}

func (f Filter) match(r *Record) bool {
	switch {
	case f.State != tpv1.EscalationState_ESCALATION_STATE_UNSPECIFIED && r.State != f.State,
		f.Rule != "" && r.Rule != f.Rule,
		f.Team != "" && r.Labels["team"] != f.Team,
		f.Agent != "" && r.Labels["agent"] != f.Agent,
		f.Ticket != "" && r.Labels["ticket"] != f.Ticket:
		return false
	}
	return true
}

// ErrBadPageToken reports a page token List did not hand out.
var ErrBadPageToken = errors.New("malformed page token")

// cursor is the position after the last escalation of a page: its trigger time and id, in the
// index's order (newest first, ties by id descending).
type cursor struct {
	score int64
	id    string
}

func (c cursor) token() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.score, 10) + "|" + c.id))
}

func parseToken(tok string) (cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return cursor{}, ErrBadPageToken
	}
	score, id, ok := strings.Cut(string(raw), "|")
	n, err := strconv.ParseInt(score, 10, 64)
	if !ok || err != nil || id == "" {
		return cursor{}, ErrBadPageToken
	}
	return cursor{n, id}, nil
}

// listChunk is how many index entries one round trip reads while a page fills.
const listChunk = 256

// List returns up to size escalations matching f, newest trigger first, starting after the page
// token (empty for the first page), and the token of the next page ("" after the last).
func (s *Store) List(ctx context.Context, tenant string, f Filter, size int, pageToken string) ([]*Record, string, error) {
	var after *cursor
	if pageToken != "" {
		c, err := parseToken(pageToken)
		if err != nil {
			return nil, "", err
		}
		after = &c
	}
	maxScore := "+inf"
	if !f.To.IsZero() {
		maxScore = "(" + strconv.FormatInt(f.To.UnixMilli(), 10)
	}
	if after != nil {
		maxScore = strconv.FormatInt(after.score, 10)
	}
	minScore := "-inf"
	if !f.From.IsZero() {
		minScore = strconv.FormatInt(f.From.UnixMilli(), 10)
	}
	var out []*Record
	offset := int64(0)
	for {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, IndexKey(tenant), &redis.ZRangeBy{
			Max: maxScore, Min: minScore, Offset: offset, Count: listChunk,
		}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("list escalations of %s: %w", tenant, err)
		}
		offset += int64(len(zs))
		var ids []string
		var scores []int64
		for _, z := range zs {
			id, _ := z.Member.(string)
			sc := int64(z.Score)
			// Entries of the cursor's own instant come before it in the order only when their id
			// sorts after it (ZREVRANGE orders ties by member descending).
			if after != nil && sc == after.score && id >= after.id {
				continue
			}
			ids, scores = append(ids, id), append(scores, sc)
		}
		recs, err := s.getMany(ctx, tenant, ids)
		if err != nil {
			return nil, "", err
		}
		for i, r := range recs {
			if r == nil || !f.match(r) {
				continue
			}
			out = append(out, r)
			if len(out) == size {
				more := i < len(recs)-1 || len(zs) == listChunk
				if !more {
					return out, "", nil
				}
				return out, cursor{scores[i], ids[i]}.token(), nil
			}
		}
		if len(zs) < listChunk {
			return out, "", nil
		}
	}
}

// getMany reads escalations in one pipelined round trip: the latest of each rule and subject
// from its pointer hash, older ones from their archive keys. Expired ones come back nil and
// leave the index.
func (s *Store) getMany(ctx context.Context, tenant string, ids []string) ([]*Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	type read struct {
		n       int64
		ptr     *redis.SliceCmd
		archive *redis.StringCmd
	}
	reads := make([]*read, len(ids))
	pipe := s.rdb.Pipeline()
	for i, id := range ids {
		rule, subj, n, err := ParseID(id)
		if err != nil {
			continue
		}
		reads[i] = &read{n: n, ptr: pipe.HMGet(ctx, pointerKey(tenant, rule, subj), "n", "rec"),
			archive: pipe.Get(ctx, recordKey(tenant, rule, subj, n))}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read escalations: %w", err)
	}
	out := make([]*Record, len(ids))
	var gone []any
	for i, rd := range reads {
		var data string
		if rd != nil {
			vals := rd.ptr.Val()
			if n, _ := vals[0].(string); n == strconv.FormatInt(rd.n, 10) {
				data, _ = vals[1].(string)
			} else {
				data = rd.archive.Val()
			}
		}
		if data == "" {
			gone = append(gone, ids[i])
			continue
		}
		r, err := decode([]byte(data))
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	if len(gone) > 0 {
		if err := s.rdb.ZRem(ctx, IndexKey(tenant), gone...).Err(); err != nil {
			return nil, fmt.Errorf("drop expired escalations from the index: %w", err)
		}
	}
	return out, nil
}
