package escalationstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/zpage"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Filter selects escalations; zero fields match everything.
type Filter struct {
	State  tpv1.EscalationState
	Rule   string
	Team   string
	Agent  string
	Ticket string
	// Queue is the contact-centre queue of a scope: queue KPI rule's escalation (its "queue" label).
	Queue string
	// Severity is the escalation's current severity; unspecified matches every one.
	Severity tpv1.Severity
	// From and To bound the trigger time, [From, To).
	From, To time.Time
}

func (f Filter) match(r *Record) bool {
	switch {
	case f.State != tpv1.EscalationState_ESCALATION_STATE_UNSPECIFIED && r.State != f.State,
		f.Rule != "" && r.Rule != f.Rule,
		f.Team != "" && r.Labels["team"] != f.Team,
		f.Agent != "" && r.Labels["agent"] != f.Agent,
		f.Ticket != "" && r.Labels["ticket"] != f.Ticket,
		f.Queue != "" && r.Labels["queue"] != f.Queue,
		f.Severity != tpv1.Severity_SEVERITY_UNSPECIFIED && r.Severity != f.Severity:
		return false
	}
	return true
}

// ErrBadPageToken reports a page token List did not hand out.
var ErrBadPageToken = zpage.ErrBadToken

// List returns up to size escalations matching f, newest trigger first, starting after the page
// token (empty for the first page), and the token of the next page ("" after the last).
func (s *Store) List(ctx context.Context, tenant string, f Filter, size int, pageToken string) ([]*Record, string, error) {
	recs, next, err := zpage.List(ctx, s.rdb, zpage.Query{Key: IndexKey(tenant), From: f.From, To: f.To, Size: size, Token: pageToken},
		func(ctx context.Context, ids []string) ([]*Record, error) { return s.getMany(ctx, tenant, ids, true) },
		func(r *Record) bool { return r != nil && f.match(r) })
	if err != nil && !errors.Is(err, ErrBadPageToken) {
		return nil, "", fmt.Errorf("list escalations of %s: %w", tenant, err)
	}
	return recs, next, err
}

// Triggered returns the tenant's escalations triggered in [from, to), newest first, at most
// most of them, and whether there were more. Unlike List it writes nothing, not even the
// removal of expired escalations from the index: the what-if reads with it and must leave the
// store as it found it.
func (s *Store) Triggered(ctx context.Context, tenant string, from, to time.Time, most int) ([]*Record, bool, error) {
	var out []*Record
	token := ""
	for {
		recs, next, err := zpage.List(ctx, s.rdb, zpage.Query{Key: IndexKey(tenant), From: from, To: to, Size: 500, Token: token},
			func(ctx context.Context, ids []string) ([]*Record, error) { return s.getMany(ctx, tenant, ids, false) },
			func(r *Record) bool { return r != nil })
		if err != nil {
			return nil, false, fmt.Errorf("escalations of %s triggered from %s: %w", tenant, from.Format(time.RFC3339), err)
		}
		for _, r := range recs {
			if len(out) == most {
				return out, true, nil
			}
			out = append(out, r)
		}
		if next == "" {
			return out, false, nil
		}
		token = next
	}
}

// getMany reads escalations in one pipelined round trip: the latest of each rule and subject
// from its pointer hash, older ones from their archive keys. Expired ones come back nil and,
// with prune, leave the index.
func (s *Store) getMany(ctx context.Context, tenant string, ids []string, prune bool) ([]*Record, error) {
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
			// Exec reports only the first failure, which may be a missing archive key (redis.Nil)
			// while a later command failed outright (a cluster failing over).
			for _, err := range []error{rd.ptr.Err(), rd.archive.Err()} {
				if err != nil && !errors.Is(err, redis.Nil) {
					return nil, fmt.Errorf("read escalation %s: %w", ids[i], err)
				}
			}
			vals := rd.ptr.Val()
			if len(vals) == 2 && vals[0] == strconv.FormatInt(rd.n, 10) {
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
	if len(gone) > 0 && prune {
		if err := s.rdb.ZRem(ctx, IndexKey(tenant), gone...).Err(); err != nil {
			return nil, fmt.Errorf("drop expired escalations from the index: %w", err)
		}
	}
	return out, nil
}
