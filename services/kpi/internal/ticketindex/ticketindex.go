// Package ticketindex reads the drill-down index: the tickets behind a scope's figures in a
// window, newest first, each with its own figures (ListTicketKpis).
//
// The write path (package store) keeps, per scope (agent, team, the unassigned figures and the
// whole tenant) and UTC day, a hash bucket.TicketIndexKey of "<hh>|<escaped ticket>" to the number
// of the ticket's figures (first response, latest resolution, reopens, latest rating) credited to
// the scope in that hour, moved by the same diff and script as the figures themselves, and each
// ticket's row (its figures, with whom each is credited to) in the ticket's own hash. A listing
// walks the index hours newest first and lists a ticket once, at the newest hour of the window in
// which it has a figure credited to the scope; within an hour, tickets come in the order of their
// escaped ids.
package ticketindex

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// ErrCorrupt reports an index entry or row that does not decode.
var ErrCorrupt = errors.New("corrupt ticket index")

// Bounds of the work of one List call. A filter that matches nothing over a long window must not
// make one call read years of index: a call stops after MaxExamined entries or MaxDays days and
// says where to go on (Page.Next), however few rows it found.
const (
	MaxExamined = 5000
	MaxDays     = 366
	// daysPerRound is how many day hashes one round trip reads.
	daysPerRound = 31
	// rowsPerRound is how many rows one round trip reads.
	rowsPerRound = 250
)

// Filter narrows a listing; every condition that is set must hold.
type Filter struct {
	MinFirstResponseMillis, MinResolutionMillis *int64
	MaxRating, MinReopens                       *int
	SLABreached, Unresolved                     bool
}

// Match reports whether t passes f.
func (f *Filter) Match(t *contrib.Ticket) bool {
	switch {
	case f.MinFirstResponseMillis != nil && (t.FirstResponseMillis < 0 || t.FirstResponseMillis < *f.MinFirstResponseMillis):
		return false
	case f.MinResolutionMillis != nil && (t.ResolutionMillis < 0 || t.ResolutionMillis < *f.MinResolutionMillis):
		return false
	case f.MaxRating != nil && (t.Rating == 0 || int(t.Rating) > *f.MaxRating):
		return false
	case f.MinReopens != nil && t.Reopens < *f.MinReopens:
		return false
	case f.SLABreached && !(t.SLAFirstBreached || t.SLANextBreached || t.SLAResolutionBreached):
		return false
	case f.Unresolved && isResolved(t.Status):
		return false
	}
	return true
}

func isResolved(s tpv1.TicketStatus) bool {
	return s == tpv1.TicketStatus_TICKET_STATUS_SOLVED || s == tpv1.TicketStatus_TICKET_STATUS_CLOSED
}

// Position is where a listing stands: the entries still to come are those of hours before Hour,
// and those of Hour whose escaped ticket id sorts after Ticket ("" before every id).
type Position struct {
	Hour   int64
	Ticket string
}

// Query is one call's listing.
type Query struct {
	// Keyspace is the key generation read (package generation).
	Keyspace string
	// Scope is an agent, a team or bucket.Tenant.
	Scope            bucket.Scope
	FromHour, ToHour int64
	Filter           Filter
	// Limit is the most rows returned.
	Limit int
	// From is where to start; nil starts with the window's last hour.
	From *Position
}

// Row is one listed ticket.
type Row struct {
	ID     string
	Ticket contrib.Ticket
	// Hour is the hour it is listed at: its newest figure of the scope in the window.
	Hour int64
}

// Page is the result of one call.
type Page struct {
	Rows []Row
	// Next is where the next call goes on; nil when the window is done.
	Next *Position
	// Examined counts the index entries this call looked at.
	Examined int
}

// Reader lists tickets from Redis.
type Reader struct {
	rdb         redis.UniversalClient
	maxExamined int
	maxDays     int
}

// NewReader returns a reader with the bounds MaxExamined and MaxDays.
func NewReader(rdb redis.UniversalClient) *Reader {
	return &Reader{rdb: rdb, maxExamined: MaxExamined, maxDays: MaxDays}
}

// SetBounds replaces the per-call bounds (tests that page through small budgets).
func (r *Reader) SetBounds(maxExamined, maxDays int) { r.maxExamined, r.maxDays = maxExamined, maxDays }

type entry struct {
	hour   int64
	ticket string // escaped
}

// List returns up to q.Limit tickets of the scope with a figure in [FromHour, ToHour) that pass
// the filter, newest figure first.
func (r *Reader) List(ctx context.Context, q Query) (Page, error) {
	var page Page
	pos := Position{Hour: q.ToHour - 1}
	if q.From != nil {
		pos = *q.From
	}
	if pos.Hour >= q.ToHour {
		pos = Position{Hour: q.ToHour - 1}
	}
	firstDay := bucket.DayOf(q.FromHour)
	days := 0
	for day := bucket.DayOf(pos.Hour); day >= firstDay; {
		n := min(daysPerRound, int(day-firstDay+1), r.maxDays-days)
		if n <= 0 {
			page.Next = &Position{Hour: day*24 + 23}
			return page, nil
		}
		hashes, err := r.readDays(ctx, q, day, n)
		if err != nil {
			return page, err
		}
		for k, h := range hashes {
			d := day - int64(k)
			days++
			entries, err := dayEntries(h, d, q, pos)
			if err != nil {
				return page, err
			}
			done, err := r.walk(ctx, q, entries, &page)
			if err != nil || done {
				return page, err
			}
			pos = Position{Hour: d*24 - 1}
			if page.Examined >= r.maxExamined && d > firstDay {
				page.Next = &Position{Hour: d*24 - 1}
				return page, nil
			}
		}
		day -= int64(n)
	}
	return page, nil
}

func (r *Reader) readDays(ctx context.Context, q Query, day int64, n int) ([]map[string]string, error) {
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, n)
	for k := range n {
		cmds[k] = pipe.HGetAll(ctx, bucket.TicketIndexKey(q.Keyspace, q.Scope, day-int64(k)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read ticket index of %s %q: %w", string(q.Scope.Kind), q.Scope.ID, err)
	}
	out := make([]map[string]string, n)
	for k, c := range cmds {
		out[k] = c.Val()
	}
	return out, nil
}

// dayEntries returns the entries of one day's hash that are in the window and after pos, in
// listing order.
func dayEntries(h map[string]string, day int64, q Query, pos Position) ([]entry, error) {
	out := make([]entry, 0, len(h))
	for f, v := range h {
		if len(f) < 4 || f[2] != '|' {
			return nil, fmt.Errorf("%w: field %q", ErrCorrupt, f)
		}
		hh, err := strconv.Atoi(f[:2])
		if err != nil || hh > 23 {
			return nil, fmt.Errorf("%w: field %q", ErrCorrupt, f)
		}
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
			continue // no figure left (a count only a crashed writer could leave)
		}
		e := entry{hour: day*24 + int64(hh), ticket: f[3:]}
		if e.hour < q.FromHour || e.hour >= q.ToHour || e.hour > pos.Hour || e.hour == pos.Hour && e.ticket <= pos.Ticket {
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int {
		if c := cmp.Compare(b.hour, a.hour); c != 0 {
			return c
		}
		return cmp.Compare(a.ticket, b.ticket)
	})
	return out, nil
}

// walk reads the rows of entries and lists those due; it reports whether the call is over (page
// full, or budget spent mid-day), with page.Next set.
func (r *Reader) walk(ctx context.Context, q Query, entries []entry, page *Page) (bool, error) {
	for len(entries) > 0 {
		n := min(len(entries), rowsPerRound, max(r.maxExamined-page.Examined, 1))
		chunk := entries[:n]
		ids := make([]string, n)
		for i, e := range chunk {
			id, err := idtoken.Unescape(e.ticket)
			if err != nil {
				return true, fmt.Errorf("%w: ticket %q: %v", ErrCorrupt, e.ticket, err)
			}
			ids[i] = id
		}
		rows, ok, err := store.ReadRows(ctx, r.rdb, q.Keyspace, ids)
		if err != nil {
			return true, err
		}
		for i, e := range chunk {
			page.Examined++
			if ok[i] && listedAt(&rows[i], q) == e.hour && q.Filter.Match(&rows[i]) {
				page.Rows = append(page.Rows, Row{ID: ids[i], Ticket: rows[i], Hour: e.hour})
			}
			last := i == len(chunk)-1 && len(entries) == n
			if len(page.Rows) >= q.Limit || page.Examined >= r.maxExamined && !last {
				page.Next = &Position{Hour: e.hour, Ticket: e.ticket}
				return true, nil
			}
		}
		entries = entries[n:]
	}
	return false, nil
}

// listedAt is the hour a ticket is listed at in q: that of its newest figure credited to the
// scope in the window; -1 for none.
func listedAt(t *contrib.Ticket, q Query) int64 {
	best := int64(-1)
	for _, f := range t.Figures {
		if !credits(f, q.Scope) {
			continue
		}
		h := floorDiv(f.AtMillis, 3_600_000)
		if h >= q.FromHour && h < q.ToHour && h > best {
			best = h
		}
	}
	return best
}

// credits reports whether f is credited to s, as contrib.Ticket.IndexCells files it.
func credits(f contrib.Figure, s bucket.Scope) bool {
	switch s.Kind {
	case bucket.Agent:
		return f.Agent == s.ID && f.Agent != ""
	case bucket.Team:
		return f.Team == s.ID && f.Team != ""
	case bucket.Unassigned:
		return f.Agent == ""
	case bucket.Tenant:
		return true
	}
	return false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Latest returns whom the ticket's latest figure is credited to (empty when it has none).
func Latest(t *contrib.Ticket) (agent, team string) {
	var at int64
	for i, f := range t.Figures {
		if i == 0 || f.AtMillis >= at {
			at, agent, team = f.AtMillis, f.Agent, f.Team
		}
	}
	return agent, team
}
