package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// A ticket's drill-down row (contrib.Ticket) is kept in its own hash, in pieces like its state
// (fields "r", "r1", ...; see stateChunks), written by the same compare-and-set as the state it
// was computed from, and kept by compaction: a compacted ticket is still listed.
//
// Version 1: flags, status, priority, reopens, rating, the latest event's time (Unix ms), the
// other times relative to it, then the figures (kind, time relative to the latest event, agent
// and team from the string table).
const rowVersion = 1

// ErrCorrupt reports a stored row (or state) that does not decode.
var ErrCorrupt = errCorrupt

const (
	rowCreated = 1 << iota
	rowFirstResponse
	rowResolved
	rowResolution
	rowSLAFirst
	rowSLANext
	rowSLAResolution
)

// rowField names piece k of a ticket's drill-down row: "r", then "r1", "r2", ...
func rowField(k int) string {
	if k == 0 {
		return "r"
	}
	return "r" + strconv.Itoa(k)
}

func encodeRow(t *contrib.Ticket) []byte {
	e := newEncoder(rowVersion)
	var flags uint64
	set := func(on bool, f uint64) {
		if on {
			flags |= f
		}
	}
	set(t.CreatedMillis != 0, rowCreated)
	set(t.FirstResponseMillis >= 0, rowFirstResponse)
	set(t.ResolvedAt != 0, rowResolved)
	set(t.ResolutionMillis >= 0, rowResolution)
	set(t.SLAFirstBreached, rowSLAFirst)
	set(t.SLANextBreached, rowSLANext)
	set(t.SLAResolutionBreached, rowSLAResolution)
	e.uvarint(flags)
	e.uvarint(uint64(t.Status))
	e.uvarint(uint64(t.Priority))
	e.uvarint(uint64(t.Reopens))
	e.uvarint(uint64(t.Rating))
	e.varint(t.UpdatedMillis)
	rel := func(at int64) { e.varint(t.UpdatedMillis - at) }
	if flags&rowCreated != 0 {
		rel(t.CreatedMillis)
	}
	if flags&rowFirstResponse != 0 {
		e.varint(t.FirstResponseMillis)
		rel(t.FirstResponseAt)
	}
	if flags&rowResolved != 0 {
		rel(t.ResolvedAt)
	}
	if flags&rowResolution != 0 {
		e.varint(t.ResolutionMillis)
	}
	e.uvarint(uint64(len(t.Figures)))
	for _, f := range t.Figures {
		e.uvarint(uint64(f.Kind))
		rel(f.AtMillis)
		e.str(f.Agent)
		e.str(f.Team)
	}
	return e.bytes()
}

// DecodeRow reads a drill-down row.
func DecodeRow(b []byte) (contrib.Ticket, error) {
	d := newDecoder(b, rowVersion)
	t := contrib.Ticket{FirstResponseMillis: -1, ResolutionMillis: -1}
	flags := d.uvarint()
	t.Status = tpv1.TicketStatus(d.uvarint())
	t.Priority = tpv1.Priority(d.uvarint())
	reopens := d.uvarint()
	t.Reopens = int(min(reopens, 1<<31))
	t.Rating = d.byte()
	t.UpdatedMillis = d.varint()
	rel := func() int64 { return t.UpdatedMillis - d.varint() }
	if flags&rowCreated != 0 {
		t.CreatedMillis = rel()
	}
	if flags&rowFirstResponse != 0 {
		t.FirstResponseMillis = d.varint()
		t.FirstResponseAt = rel()
	}
	if flags&rowResolved != 0 {
		t.ResolvedAt = rel()
	}
	if flags&rowResolution != 0 {
		t.ResolutionMillis = d.varint()
	}
	// What encodeRow cannot have written: unknown flags, negative durations, a time flagged but
	// zero, an impossible count.
	if flags >= rowSLAResolution<<1 || t.FirstResponseMillis < -1 || t.ResolutionMillis < -1 ||
		flags&rowFirstResponse != 0 && t.FirstResponseMillis < 0 || flags&rowResolution != 0 && t.ResolutionMillis < 0 ||
		flags&rowCreated != 0 && t.CreatedMillis == 0 || flags&rowResolved != 0 && t.ResolvedAt == 0 || reopens >= 1<<31 {
		d.fail()
	}
	t.SLAFirstBreached = flags&rowSLAFirst != 0
	t.SLANextBreached = flags&rowSLANext != 0
	t.SLAResolutionBreached = flags&rowSLAResolution != 0
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail()
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		f := contrib.Figure{Kind: contrib.FigureKind(d.byte())}
		if f.Kind < contrib.FirstResponseFigure || f.Kind > contrib.RatingFigure {
			d.fail()
		}
		f.AtMillis = rel()
		f.Agent, f.Team = d.str(), d.str()
		t.Figures = append(t.Figures, f)
	}
	if d.err == nil && len(d.buf) > 0 {
		d.fail()
	}
	if d.err != nil {
		return contrib.Ticket{}, fmt.Errorf("ticket row: %w", d.err)
	}
	return t, nil
}

// rowPiecesRead is how many pieces of a row ReadRows asks for at once; a longer row (a ticket
// with dozens of reopens) takes a second read.
const rowPiecesRead = 8

// ReadRows returns the drill-down rows of tickets (raw ids) of keyspace ks, in one pipelined
// round trip (two for rows longer than rowPiecesRead pieces); ok[i] is false for a ticket
// without one (unknown, or last written by a release before rows existed).
func ReadRows(ctx context.Context, rdb redis.UniversalClient, ks string, tickets []string) (rows []contrib.Ticket, ok []bool, err error) {
	fields := make([]string, rowPiecesRead)
	for k := range fields {
		fields[k] = rowField(k)
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(tickets))
	for i, id := range tickets {
		cmds[i] = pipe.HMGet(ctx, TicketKey(ks, id), fields...)
	}
	if len(tickets) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, nil, fmt.Errorf("read ticket rows: %w", err)
		}
	}
	rows, ok = make([]contrib.Ticket, len(tickets)), make([]bool, len(tickets))
	for i, cmd := range cmds {
		h := make(map[string]string, rowPiecesRead)
		for k, v := range cmd.Val() {
			if s, isStr := v.(string); isStr {
				h[fields[k]] = s
			}
		}
		if v := h[rowField(rowPiecesRead-1)]; len(v) == stateChunk {
			all, err := rdb.HGetAll(ctx, TicketKey(ks, tickets[i])).Result()
			if err != nil {
				return nil, nil, fmt.Errorf("read ticket row %s: %w", tickets[i], err)
			}
			h = all
		}
		blob, _, found := joinPieces(h, "r", rowField)
		if !found {
			continue
		}
		t, err := DecodeRow([]byte(blob))
		if err != nil {
			return nil, nil, fmt.Errorf("ticket %s: %w", tickets[i], err)
		}
		rows[i], ok[i] = t, true
	}
	return rows, ok, nil
}
