package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// The ticket state and pending deltas are stored as compact binary blobs: a version, a string table
// (ids repeat a lot within a ticket), then varint-encoded records.
//
// Version 2 of the ticket state added each event's sequence: a flag in the low bit of the packed
// fields says one follows, so events without one (most sources) cost nothing more. Version 3 adds
// each event's channel and tags, which SLA policies match on. Older states still decode: version 1
// with every sequence 0, versions 1 and 2 without channel and tags. Pending deltas did not change
// and stay version 1, so a replica of the previous release can still apply them.
//
// Version 4 is a tombstone, what a quiet solved ticket is compacted into (see Compactor): no
// events, no contribution, only a 32-bit fingerprint of each event's key, sorted, so a
// redelivered event is told from a new one (docs/kpis.md argues the size).
//
// Version 5 holds what version 3 does in about half the bytes, as the states of the tickets not
// yet compacted are the largest part of kpi's memory: an event stores only what differs from the
// event before it (most keep the ticket's assignee, team, priority, channel and tags), its time
// in seconds when it has no milliseconds, and the contribution is grouped per cell, a cell with
// the same figures as an earlier one (a team's hour is mostly its agent's) naming that one
// instead. A ticket state is written as version 5 or 4; 1, 2 and 3 are only read.
//
// Events of versions 5 and 6 may carry a QA review (the flag evQA, qa_scored events) or a call
// (the flag evCall, call_* events): a replica of a release before QA reviews or calls reads the
// flag as corrupt and fails on the state cleanly (the batch is redelivered) rather than dropping
// the review or the call, so no new version number is needed.
//
// Version 6 is version 5 whose contribution may hold drill-down index cells
// (contrib.TicketsField), and version 2 of the pending deltas the same for deltas: the same
// bytes under a new number, so that a replica of a release without the index fails on them
// cleanly (an unknown format version; the batch is redelivered) instead of taking the cells for
// bucket figures. 5 and 1 are still read, and pending deltas without index cells are still
// written as 1.
const (
	stateVersion     = 6
	stateVersion5    = 5
	tombstoneVersion = 4
	pendingVersion   = 2
	pendingVersion1  = 1
)

var errCorrupt = errors.New("corrupt ticket state")

type encoder struct {
	version uint64
	buf     []byte
	strings map[string]uint64
	table   []string
}

func newEncoder(version uint64) *encoder {
	return &encoder{version: version, strings: map[string]uint64{}}
}

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }

func (e *encoder) str(s string) {
	i, ok := e.strings[s]
	if !ok {
		i = uint64(len(e.table))
		e.strings[s] = i
		e.table = append(e.table, s)
	}
	e.uvarint(i)
}

// bytes returns version, string table, then the body.
func (e *encoder) bytes() []byte {
	out := binary.AppendUvarint(nil, e.version)
	out = binary.AppendUvarint(out, uint64(len(e.table)))
	for _, s := range e.table {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	return append(out, e.buf...)
}

type decoder struct {
	version uint64
	buf     []byte
	table   []string
	err     error
}

// newDecoder reads the version and string table of b, failing unless the version is one of known.
func newDecoder(b []byte, known ...uint64) *decoder {
	d := &decoder{buf: b}
	if d.version = d.uvarint(); !slices.Contains(known, d.version) && d.err == nil {
		d.err = fmt.Errorf("%w: format version %d", errCorrupt, d.version)
	}
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail()
		return d
	}
	d.table = make([]string, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		l := d.uvarint()
		if l > uint64(len(d.buf)) {
			d.fail()
			break
		}
		d.table = append(d.table, string(d.buf[:l]))
		d.buf = d.buf[l:]
	}
	return d
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) str() string {
	i := d.uvarint()
	if d.err != nil || i >= uint64(len(d.table)) {
		d.fail()
		return ""
	}
	return d.table[i]
}

// byte reads a uvarint that must fit a byte.
func (d *decoder) byte() uint8 {
	v := d.uvarint()
	if v > 0xFF {
		d.fail()
	}
	return uint8(v)
}

func (d *decoder) u32() uint32 {
	if d.err != nil || len(d.buf) < 4 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(d.buf)
	d.buf = d.buf[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.buf) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

// ticketState is what the write path keeps per ticket: the events seen and the contribution applied,
// or, once compacted, a tombstone.
type ticketState struct {
	Events  []contrib.Event
	Applied map[contrib.Key]int64
	// Compacted marks a tombstone: Events and Applied are empty and Seen holds the fingerprints
	// of the events the ticket had, sorted.
	Compacted bool
	Seen      []uint32
}

// fingerprint folds an event key (a 64-bit hash of its id) into the 32 bits a tombstone keeps.
func fingerprint(key uint64) uint32 { return uint32(key>>32) ^ uint32(key) }

// tombstone returns the tombstone of s: the fingerprints of its events, sorted, without repeats.
func (s ticketState) tombstone() ticketState {
	if s.Compacted {
		return s
	}
	seen := make([]uint32, len(s.Events))
	for i, ev := range s.Events {
		seen[i] = fingerprint(ev.Key)
	}
	slices.Sort(seen)
	return ticketState{Compacted: true, Seen: slices.Compact(seen)}
}

// saw reports whether a tombstone holds the fingerprint of event key k.
func (s ticketState) saw(k uint64) bool {
	_, ok := slices.BinarySearch(s.Seen, fingerprint(k))
	return ok
}

func encodeState(s ticketState) []byte {
	if s.Compacted {
		return encodeTombstone(s.Seen)
	}
	e := newEncoder(stateVersion)
	e.uvarint(uint64(len(s.Events)))
	var prev contrib.Event
	for _, ev := range s.Events {
		encodeEvent(e, &prev, &ev)
		prev = ev
	}
	encodeCells(e, s.Applied)
	return e.bytes()
}

// Flags of a version 5 event: which fields follow. The ones most events set come first, so the
// flags of most events fit the one byte of a uvarint.
const (
	evSeconds  = 1 << iota // the time delta is in seconds
	evActorID              // ActorID differs from the event before
	evActor                // Actor differs from the event before
	evStatus               // Status is not 0
	evPublic               // Public is not 0
	evScore                // Score is not 0
	evSequence             // Sequence is not 0
	evAssignee             // Assignee differs from the event before
	evTeam                 // Team differs from the event before
	evPriority             // Priority differs from the event before
	evChannel              // Channel differs from the event before
	evTags                 // Tags differ from the event before
	evQA                   // a QA review follows (qa_scored events)
	evCall                 // a call follows (call_* events)
	evAll      = evCall<<1 - 1
)

// encodeEvent writes ev as version 5 does: its key, type, flags, time delta to prev, then the
// fields the flags name. The first event's prev is the zero event.
func encodeEvent(e *encoder, prev, ev *contrib.Event) {
	var flags uint64
	delta := ev.AtMillis - prev.AtMillis
	if delta%1000 == 0 {
		flags |= evSeconds
		delta /= 1000
	}
	set := func(flag uint64, on bool) {
		if on {
			flags |= flag
		}
	}
	set(evActorID, ev.ActorID != prev.ActorID)
	set(evActor, ev.Actor != prev.Actor)
	set(evStatus, ev.Status != 0)
	set(evPublic, ev.Public != 0)
	set(evScore, ev.Score != 0)
	set(evSequence, ev.Sequence != 0)
	set(evAssignee, ev.Assignee != prev.Assignee)
	set(evTeam, ev.Team != prev.Team)
	set(evPriority, ev.Priority != prev.Priority)
	set(evChannel, ev.Channel != prev.Channel)
	set(evTags, ev.Tags != prev.Tags)
	set(evQA, ev.QAReview != 0)
	set(evCall, ev.CallKey != 0)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, ev.Key)
	e.uvarint(uint64(ev.Type))
	e.uvarint(flags)
	e.varint(delta)
	if flags&evActorID != 0 {
		e.str(ev.ActorID)
	}
	if flags&evActor != 0 {
		e.uvarint(uint64(ev.Actor))
	}
	if flags&evStatus != 0 {
		e.uvarint(uint64(ev.Status))
	}
	if flags&evPublic != 0 {
		e.uvarint(uint64(ev.Public))
	}
	if flags&evScore != 0 {
		e.uvarint(uint64(ev.Score))
	}
	if flags&evSequence != 0 {
		e.uvarint(ev.Sequence)
	}
	if flags&evAssignee != 0 {
		e.str(ev.Assignee)
	}
	if flags&evTeam != 0 {
		e.str(ev.Team)
	}
	if flags&evPriority != 0 {
		e.uvarint(uint64(ev.Priority))
	}
	if flags&evChannel != 0 {
		e.str(ev.Channel)
	}
	if flags&evTags != 0 {
		e.str(ev.Tags)
	}
	if flags&evQA != 0 {
		e.buf = binary.LittleEndian.AppendUint64(e.buf, ev.QAReview)
		e.str(ev.QAAgent)
		e.str(ev.QATeam)
		e.uvarint(uint64(ev.QAScore))
		var fail uint64
		if ev.QAAutoFail {
			fail = 1
		}
		e.uvarint(fail)
	}
	if flags&evCall != 0 {
		e.buf = binary.LittleEndian.AppendUint64(e.buf, ev.CallKey)
		e.str(ev.CallAgent)
		e.str(ev.CallTeam)
		e.str(ev.CallQueue)
		e.uvarint(uint64(ev.CallDir))
		for _, ms := range [...]uint32{ev.CallWait, ev.CallTalk, ev.CallHold, ev.CallWrapUp} {
			e.uvarint(uint64(ms))
		}
	}
}

// decodeEvent reads an event of version 5 written after prev.
func decodeEvent(d *decoder, prev *contrib.Event) contrib.Event {
	ev := contrib.Event{
		Key: d.u64(), Type: tpv1.EventType(d.uvarint()),
		ActorID: prev.ActorID, Actor: prev.Actor, Assignee: prev.Assignee, Team: prev.Team,
		Priority: prev.Priority, Channel: prev.Channel, Tags: prev.Tags,
	}
	flags := d.uvarint()
	if flags&^evAll != 0 {
		d.fail()
	}
	delta := d.varint()
	if flags&evSeconds != 0 {
		delta *= 1000
	}
	ev.AtMillis = prev.AtMillis + delta
	if flags&evActorID != 0 {
		ev.ActorID = d.str()
	}
	if flags&evActor != 0 {
		ev.Actor = tpv1.ActorKind(d.uvarint())
	}
	if flags&evStatus != 0 {
		ev.Status = tpv1.TicketStatus(d.uvarint())
	}
	if flags&evPublic != 0 {
		ev.Public = d.byte()
	}
	if flags&evScore != 0 {
		ev.Score = d.byte()
	}
	if flags&evSequence != 0 {
		ev.Sequence = d.uvarint()
	}
	if flags&evAssignee != 0 {
		ev.Assignee = d.str()
	}
	if flags&evTeam != 0 {
		ev.Team = d.str()
	}
	if flags&evPriority != 0 {
		ev.Priority = tpv1.Priority(d.uvarint())
	}
	if flags&evChannel != 0 {
		ev.Channel = d.str()
	}
	if flags&evTags != 0 {
		ev.Tags = d.str()
	}
	if flags&evQA != 0 {
		ev.QAReview = d.u64()
		ev.QAAgent = d.str()
		ev.QATeam = d.str()
		if score := d.uvarint(); score <= 10000 {
			ev.QAScore = uint16(score)
		} else {
			d.fail()
		}
		switch d.uvarint() {
		case 0:
		case 1:
			ev.QAAutoFail = true
		default:
			d.fail()
		}
	}
	if flags&evCall != 0 {
		ev.CallKey = d.u64()
		ev.CallAgent = d.str()
		ev.CallTeam = d.str()
		ev.CallQueue = d.str()
		switch dir := tpv1.CallDirection(d.uvarint()); dir {
		case tpv1.CallDirection_CALL_DIRECTION_UNSPECIFIED, tpv1.CallDirection_CALL_DIRECTION_INBOUND, tpv1.CallDirection_CALL_DIRECTION_OUTBOUND:
			ev.CallDir = dir
		default:
			d.fail()
		}
		for _, ms := range [...]*uint32{&ev.CallWait, &ev.CallTalk, &ev.CallHold, &ev.CallWrapUp} {
			if v := d.uvarint(); v <= math.MaxUint32 {
				*ms = uint32(v)
			} else {
				d.fail()
			}
		}
	}
	return ev
}

// encodeCells writes a contribution as version 5 does: per cell (scope and hour, in the order of
// sortedKeys) its kind, id and hour delta, then either its figures (field deltas and values) or,
// when an earlier cell written out in full has the same figures and no other cell named it yet,
// how many cells back that one is. Naming a cell at most once bounds what a state decodes to at
// twice what it holds.
func encodeCells(e *encoder, m map[contrib.Key]int64) {
	keys := sortedKeys(m)
	var cells int
	for i := range keys {
		if i == 0 || keys[i].Cell != keys[i-1].Cell {
			cells++
		}
	}
	e.uvarint(uint64(cells))
	// The figures of cells written out in full and not yet named, by a hash of their bytes,
	// checked against the bytes themselves.
	type written struct{ cell, lo, hi int }
	same := make(map[uint64]written, cells)
	var figs []byte
	var prevHour int64
	for i, c := 0, 0; i < len(keys); c++ {
		cell := keys[i].Cell
		j := i
		figs = figs[:0]
		var prevField contrib.Field
		for ; j < len(keys) && keys[j].Cell == cell; j++ {
			figs = binary.AppendUvarint(figs, uint64(keys[j].Field-prevField))
			figs = binary.AppendVarint(figs, m[keys[j]])
			prevField = keys[j].Field
		}
		e.uvarint(uint64(cell.Kind))
		e.str(cell.ID)
		e.varint(cell.Hour - prevHour)
		prevHour = cell.Hour
		h := fnv64(figs)
		if w, ok := same[h]; ok && bytes.Equal(e.buf[w.lo:w.hi], figs) {
			delete(same, h)
			e.uvarint(uint64(c-w.cell)<<1 | 1)
		} else {
			e.uvarint(uint64(j-i) << 1)
			lo := len(e.buf)
			e.buf = append(e.buf, figs...)
			if !ok {
				same[h] = written{c, lo, len(e.buf)}
			}
		}
		i = j
	}
}

// fnv64 is FNV-1a.
func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// decodeCells reads what encodeCells wrote.
func decodeCells(d *decoder) map[contrib.Key]int64 {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail()
		return nil
	}
	type figure struct {
		f contrib.Field
		v int64
	}
	// The figures of every cell written out in full, and per cell where its own are in figs (hi
	// 0 for a cell that names another) and whether a later one named it.
	type span struct {
		lo, hi int
		named  bool
	}
	// A figure written out takes at least two bytes and may be named once more.
	figs := make([]figure, 0, len(d.buf)/2)
	cells := make([]span, 0, n)
	m := make(map[contrib.Key]int64, len(d.buf)/2)
	var hour int64
	for c := uint64(0); c < n && d.err == nil; c++ {
		var cell contrib.Cell
		cell.Kind = bucket.Kind(d.uvarint())
		cell.ID = d.str()
		hour += d.varint()
		cell.Hour = hour
		head := d.uvarint()
		var own span
		if head&1 == 1 {
			back := head >> 1
			if back == 0 || back > c || cells[c-back].named || cells[c-back].hi == 0 {
				d.fail()
				break
			}
			cells[c-back].named = true
			for _, fg := range figs[cells[c-back].lo:cells[c-back].hi] {
				m[contrib.Key{Cell: cell, Field: fg.f}] = fg.v
			}
		} else {
			count := head >> 1
			if count == 0 || count > uint64(len(d.buf)) {
				d.fail()
				break
			}
			own.lo = len(figs)
			var f contrib.Field
			for k := uint64(0); k < count && d.err == nil; k++ {
				step := d.uvarint()
				if (k > 0 && step == 0) || step > uint64(^contrib.Field(0)-f) {
					d.fail() // fields of a cell are distinct and increasing
				}
				f += contrib.Field(step)
				v := d.varint()
				figs = append(figs, figure{f, v})
				m[contrib.Key{Cell: cell, Field: f}] = v
			}
			own.hi = len(figs)
		}
		cells = append(cells, own)
	}
	return m
}

// encodeTombstone writes the sorted fingerprints of a compacted ticket's events, 4 bytes each:
// they are hashes, so no varint or delta encoding makes them shorter.
func encodeTombstone(seen []uint32) []byte {
	e := newEncoder(tombstoneVersion)
	e.uvarint(uint64(len(seen)))
	for _, k := range seen {
		e.buf = binary.LittleEndian.AppendUint32(e.buf, k)
	}
	return e.bytes()
}

func decodeState(b []byte) (ticketState, error) {
	d := newDecoder(b, 1, 2, 3, tombstoneVersion, stateVersion5, stateVersion)
	if d.version == tombstoneVersion {
		return decodeTombstone(d)
	}
	if d.version == stateVersion || d.version == stateVersion5 {
		return decodeState5(d, len(b))
	}
	n := d.uvarint()
	if n > uint64(len(b)) {
		return ticketState{}, errCorrupt
	}
	s := ticketState{Events: make([]contrib.Event, 0, n)}
	var at int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		var ev contrib.Event
		ev.Key = d.u64()
		ev.Type = tpv1.EventType(d.uvarint())
		at += d.varint()
		ev.AtMillis = at
		ev.ActorID = d.str()
		ev.Actor = tpv1.ActorKind(d.uvarint())
		ev.Assignee = d.str()
		ev.Team = d.str()
		packed := d.uvarint()
		if d.version == 1 {
			// priority<<8 | status<<4 | public, no sequence
			packed <<= 1
		}
		ev.Priority = tpv1.Priority(packed >> 9)
		ev.Status = tpv1.TicketStatus(packed >> 5 & 0xF)
		ev.Public = uint8(packed >> 1 & 0xF)
		if packed&1 == 1 {
			ev.Sequence = d.uvarint()
		}
		ev.Score = uint8(d.uvarint())
		if d.version == 3 {
			ev.Channel = d.str()
			ev.Tags = d.str()
		}
		s.Events = append(s.Events, ev)
	}
	s.Applied = decodeValues(d)
	if d.err != nil {
		return ticketState{}, d.err
	}
	return s, nil
}

// decodeState5 reads the events and contribution of a version 5 state of size bytes.
func decodeState5(d *decoder, size int) (ticketState, error) {
	n := d.uvarint()
	if n > uint64(size) {
		return ticketState{}, errCorrupt
	}
	s := ticketState{Events: make([]contrib.Event, 0, n)}
	var prev contrib.Event
	for i := uint64(0); i < n && d.err == nil; i++ {
		prev = decodeEvent(d, &prev)
		s.Events = append(s.Events, prev)
	}
	s.Applied = decodeCells(d)
	if d.err == nil && len(d.buf) != 0 {
		d.fail()
	}
	if d.err != nil {
		return ticketState{}, d.err
	}
	return s, nil
}

func decodeTombstone(d *decoder) (ticketState, error) {
	n := d.uvarint()
	if d.err == nil && (len(d.table) != 0 || n > uint64(len(d.buf))/4) {
		d.fail()
	}
	s := ticketState{Compacted: true}
	if d.err == nil {
		s.Seen = make([]uint32, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.u32()
		// Sorted without repeats, as written: a lookup relies on it.
		if i > 0 && k <= s.Seen[i-1] {
			d.fail()
		}
		s.Seen = append(s.Seen, k)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.fail()
	}
	if d.err != nil {
		return ticketState{}, d.err
	}
	return s, nil
}

func sortedKeys(m map[contrib.Key]int64) []contrib.Key {
	keys := make([]contrib.Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b contrib.Key) int {
		switch {
		case a.Kind != b.Kind:
			return int(a.Kind) - int(b.Kind)
		case a.ID != b.ID:
			if a.ID < b.ID {
				return -1
			}
			return 1
		case a.Hour != b.Hour:
			if a.Hour < b.Hour {
				return -1
			}
			return 1
		}
		return int(a.Field) - int(b.Field)
	})
	return keys
}

func encodeValues(e *encoder, m map[contrib.Key]int64) {
	e.uvarint(uint64(len(m)))
	var prevHour int64
	for _, k := range sortedKeys(m) {
		e.uvarint(uint64(k.Kind))
		e.str(k.ID)
		e.varint(k.Hour - prevHour)
		prevHour = k.Hour
		e.uvarint(uint64(k.Field))
		e.varint(m[k])
	}
}

func decodeValues(d *decoder) map[contrib.Key]int64 {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail()
		return nil
	}
	m := make(map[contrib.Key]int64, n)
	var hour int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		var k contrib.Key
		k.Kind = bucket.Kind(d.uvarint())
		k.ID = d.str()
		hour += d.varint()
		k.Hour = hour
		k.Field = contrib.Field(d.uvarint())
		m[k] = d.varint()
	}
	return m
}

// pendingEntry is what one version of a ticket still has to apply to the buckets.
type pendingEntry struct {
	Deltas      map[contrib.Key]int64
	Memberships []contrib.Membership
}

func encodePending(p pendingEntry) []byte {
	// Deltas without index cells stay version 1, which the release before the index applies.
	version := uint64(pendingVersion1)
	for k := range p.Deltas {
		if k.Field == contrib.TicketsField {
			version = pendingVersion
			break
		}
	}
	e := newEncoder(version)
	encodeValues(e, p.Deltas)
	e.uvarint(uint64(len(p.Memberships)))
	for _, m := range p.Memberships {
		e.str(m.Agent)
		e.str(m.Team)
		e.varint(m.Day)
	}
	return e.bytes()
}

func decodePending(b []byte) (pendingEntry, error) {
	d := newDecoder(b, pendingVersion1, pendingVersion)
	p := pendingEntry{Deltas: decodeValues(d)}
	n := d.uvarint()
	if n > uint64(len(b)) {
		return pendingEntry{}, errCorrupt
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		p.Memberships = append(p.Memberships, contrib.Membership{Agent: d.str(), Team: d.str(), Day: d.varint()})
	}
	if d.err != nil {
		return pendingEntry{}, d.err
	}
	return p, nil
}
