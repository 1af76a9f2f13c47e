package store

import (
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// encodeStateV3 encodes a ticket state as format version 3, as the release before version 5
// wrote it: every field of every event, the time in milliseconds, one record per figure.
func encodeStateV3(evs []contrib.Event, applied map[contrib.Key]int64) []byte {
	e := newEncoder(3)
	e.uvarint(uint64(len(evs)))
	var prevAt int64
	for _, ev := range evs {
		e.buf = binary.LittleEndian.AppendUint64(e.buf, ev.Key)
		e.uvarint(uint64(ev.Type))
		e.varint(ev.AtMillis - prevAt)
		prevAt = ev.AtMillis
		e.str(ev.ActorID)
		e.uvarint(uint64(ev.Actor))
		e.str(ev.Assignee)
		e.str(ev.Team)
		hasSeq := uint64(0)
		if ev.Sequence != 0 {
			hasSeq = 1
		}
		e.uvarint(uint64(ev.Priority)<<9 | uint64(ev.Status)<<5 | uint64(ev.Public)<<1 | hasSeq)
		if hasSeq == 1 {
			e.uvarint(ev.Sequence)
		}
		e.uvarint(uint64(ev.Score))
		e.str(ev.Channel)
		e.str(ev.Tags)
	}
	encodeValues(e, applied)
	return e.bytes()
}

// variedLife is a ticket whose events change every field the codec carries over from the event
// before, back and forth, with times in milliseconds and out of order, and its contribution with
// figures of zero and below zero and three cells of the same figures.
func variedLife() ([]contrib.Event, map[contrib.Key]int64) {
	evs := life("T-9", "ana", "billing", 0)
	evs[0].Channel, evs[0].Tags, evs[0].Priority = "email", "vip"+contrib.TagSep+"eu", tpv1.Priority_PRIORITY_URGENT
	evs[1].AtMillis += 123 // milliseconds
	evs[1].Sequence = 1<<64 - 1
	evs[2].Team, evs[2].Channel, evs[2].Tags = "sales", "", ""
	evs[2].Public = 3
	evs[3].AtMillis = evs[0].AtMillis - 7 // before the first: a negative delta
	evs[3].Assignee, evs[3].Priority, evs[3].Actor = "", tpv1.Priority_PRIORITY_UNSPECIFIED, tpv1.ActorKind_ACTOR_KIND_SYSTEM
	evs[4].Score, evs[4].ActorID = 255, ""
	hour := evs[0].AtMillis / 3_600_000
	cell := func(kind bucket.Kind, id string, h int64, figs map[contrib.Field]int64, into map[contrib.Key]int64) {
		for f, v := range figs {
			into[contrib.Key{Cell: contrib.Cell{Kind: kind, ID: id, Hour: h}, Field: f}] = v
		}
	}
	same := map[contrib.Field]int64{0: 1, 3: -90_000, contrib.BinField(2, 17): 1, 1 << 31: 0}
	applied := map[contrib.Key]int64{}
	cell(bucket.Agent, "ana", hour, same, applied)
	cell(bucket.Agent, "ana", hour-2, map[contrib.Field]int64{1: 5}, applied)
	cell(bucket.Team, "billing", hour, same, applied)
	cell(bucket.Team, "sales", hour, same, applied)
	cell(bucket.Unassigned, "", hour+1, map[contrib.Field]int64{1<<32 - 1: 1 << 40}, applied)
	return evs, applied
}

func TestStateCodecVersion5RoundTrip(t *testing.T) {
	evs, applied := variedLife()
	evs[2].Public = 255 // version 3 held 4 bits of it
	b := encodeState(ticketState{Events: evs, Applied: applied})
	if b[0] != stateVersion {
		t.Fatalf("state written as version %d, want %d", b[0], stateVersion)
	}
	checkDecodes(t, b, evs, applied)
	// Version 5, the same bytes written by the release before the drill-down index, still reads.
	checkDecodes(t, append([]byte{stateVersion5}, b[1:]...), evs, applied)
	// Every byte counts: a state cut short anywhere is refused, never read as something else.
	for n := range len(b) {
		if _, err := decodeState(b[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("state cut to %d of %d bytes decoded with %v, want errCorrupt", n, len(b), err)
		}
	}
	// A ticket without events or figures.
	checkDecodes(t, encodeState(ticketState{}), nil, map[contrib.Key]int64{})
}

// A state stored by the release before (version 3: every field of every event, figure by figure)
// still decodes, and written again it is version 5 holding the same.
func TestStateCodecReadsVersion3(t *testing.T) {
	evs, applied := variedLife()
	old := encodeStateV3(evs, applied)
	if old[0] != 3 {
		t.Fatalf("fixture written as version %d", old[0])
	}
	checkDecodes(t, old, evs, applied)
	got, err := decodeState(old)
	if err != nil {
		t.Fatal(err)
	}
	again := encodeState(got)
	if again[0] != stateVersion {
		t.Fatalf("rewritten as version %d, want %d", again[0], stateVersion)
	}
	checkDecodes(t, again, evs, applied)
}

// The point of version 5: the load generator's tickets in about half the bytes of version 3.
func TestStateCodecVersion5IsSmaller(t *testing.T) {
	g := newSimTraffic(1, 50, 5, 5000, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 7*24*time.Hour)
	var v3, v5 int
	for _, tk := range g.tickets {
		evs := slices.SortedFunc(slices.Values(tk.events), func(a, b contrib.Event) int {
			if contrib.Less(&a, &b) {
				return -1
			}
			if contrib.Less(&b, &a) {
				return 1
			}
			return 0
		})
		applied := contrib.Compute(evs, contrib.DefaultSLA()).Values
		b := encodeState(ticketState{Events: evs, Applied: applied})
		checkDecodes(t, b, evs, applied)
		v3 += len(encodeStateV3(evs, applied))
		v5 += len(b)
	}
	t.Logf("%d tickets: %.1f bytes per state in version 3, %.1f in version 5", len(g.tickets),
		float64(v3)/float64(len(g.tickets)), float64(v5)/float64(len(g.tickets)))
	if v5*10 > v3*6 {
		t.Fatalf("version 5 states take %d bytes, version 3 %d: want at most 60 %%", v5, v3)
	}
}

// A team's hour with its agent's figures is written as a reference to them: a few bytes, not the
// figures again.
func TestStateCodecNamesASameCell(t *testing.T) {
	figs := map[contrib.Key]int64{}
	for f := range contrib.Field(20) {
		figs[contrib.Key{Cell: contrib.Cell{Kind: bucket.Agent, ID: "ana", Hour: 1000}, Field: f}] = 1_000_000 + int64(f)
	}
	both := maps.Clone(figs)
	for k, v := range figs {
		k.Kind, k.ID = bucket.Team, "billing"
		both[k] = v
	}
	one, two := encodeState(ticketState{Applied: figs}), encodeState(ticketState{Applied: both})
	// The team's string and its length in the table, then its kind, string index, hour delta and
	// the reference.
	if want := 1 + len("billing") + 4; len(two)-len(one) != want {
		t.Fatalf("the team's same figures cost %d bytes, want %d", len(two)-len(one), want)
	}
	checkDecodes(t, two, nil, both)
}

func TestStateCodecVersion5RefusesMalformed(t *testing.T) {
	// state builds a version 5 state of one event with the given flags and extra fields, then
	// cells as written by body.
	state := func(flags uint64, fields []uint64, body func(e *encoder)) []byte {
		e := newEncoder(5)
		e.strings["ana"], e.table = 0, []string{"ana"}
		e.uvarint(1)
		e.buf = binary.LittleEndian.AppendUint64(e.buf, 42)
		e.uvarint(uint64(tpv1.EventType_EVENT_TYPE_TICKET_CREATED))
		e.uvarint(flags)
		e.varint(1_700_000_000)
		for _, f := range fields {
			e.uvarint(f)
		}
		body(e)
		return e.bytes()
	}
	cell := func(e *encoder, id int, head uint64, figs ...int64) {
		e.uvarint(uint64(bucket.Agent))
		e.uvarint(uint64(id))
		e.varint(0)
		e.uvarint(head)
		for _, v := range figs {
			e.varint(v)
		}
	}
	full := func(e *encoder, step, v int64) { cell(e, 0, 1<<1, step, v) }
	noCells := func(e *encoder) { e.uvarint(0) }
	valid := state(evSeconds|evActorID, []uint64{0}, func(e *encoder) {
		e.uvarint(2)
		full(e, 3, 7)
		cell(e, 0, 1<<1|1)
	})
	if _, err := decodeState(valid); err != nil {
		t.Fatalf("fixture does not decode: %v", err)
	}
	// In a cell written out in full the field steps are uvarints; reading them as varints above
	// is only how the fixtures write small ones (3 and 0 are 6 and 0 as varints).
	tests := []struct {
		name string
		give []byte
	}{
		{"unknown flag", state(evAll+1, nil, noCells)},
		{"public past a byte", state(evPublic, []uint64{256}, noCells)},
		{"score past a byte", state(evScore, []uint64{300}, noCells)},
		{"string past the table", state(evActorID, []uint64{1}, noCells)},
		{"trailing byte", append(slices.Clone(valid), 0)},
		{"cell count past the end", state(0, nil, func(e *encoder) { e.uvarint(200) })},
		{"cell without figures", state(0, nil, func(e *encoder) { e.uvarint(1); cell(e, 0, 0) })},
		{"figure count past the end", state(0, nil, func(e *encoder) { e.uvarint(1); cell(e, 0, 100<<1, 1, 1) })},
		{"repeated field", state(0, nil, func(e *encoder) { e.uvarint(1); cell(e, 0, 2<<1, 2, 1, 0, 1) })},
		{"reference to no cell", state(0, nil, func(e *encoder) { e.uvarint(1); cell(e, 0, 1<<1|1) })},
		{"reference to itself", state(0, nil, func(e *encoder) { e.uvarint(2); full(e, 1, 1); cell(e, 0, 0<<1|1) })},
		{"reference past the first", state(0, nil, func(e *encoder) { e.uvarint(2); full(e, 1, 1); cell(e, 0, 2<<1|1) })},
		{"reference to a reference", state(0, nil, func(e *encoder) {
			e.uvarint(3)
			full(e, 1, 1)
			cell(e, 0, 1<<1|1)
			cell(e, 0, 1<<1|1)
		})},
		{"cell named twice", state(0, nil, func(e *encoder) {
			e.uvarint(3)
			full(e, 1, 1)
			cell(e, 0, 1<<1|1)
			cell(e, 0, 2<<1|1)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeState(tt.give)
			if !errors.Is(err, errCorrupt) || err.Error() != "corrupt ticket state" {
				t.Fatalf("error %v, want %q", err, "corrupt ticket state")
			}
		})
	}
}

// A ticket stored as version 3 by the release before takes redeliveries and new events exactly:
// the buckets end as if every event had been written by this release, and the state is then
// version 5.
func TestWriterReadsVersion3States(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	w := NewWriter(rdb, sla, 0, quiet)
	all := life("T-1", "ana", "billing", 0)
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: all}}); err != nil {
		t.Fatal(err)
	}
	want := buckets(t, rdb)
	testenv.Flush(t, rdb)

	first := all[:3]
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: first}}); err != nil {
		t.Fatal(err)
	}
	key := TicketKey("acme", "T-1")
	h := rdb.HGetAll(ctx, key).Val()
	st, err := decodeState([]byte(must(stateBlob(h))))
	if err != nil {
		t.Fatal(err)
	}
	// As the release before stored it: version 3, in pieces.
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	args := []any{"v", h["v"], "t", h["t"]}
	for i, p := range stateChunks(encodeStateV3(st.Events, st.Applied)) {
		f := "s"
		if i > 0 {
			f += string(rune('0' + i))
		}
		args = append(args, f, p)
	}
	if err := rdb.HSet(ctx, key, args...).Err(); err != nil {
		t.Fatal(err)
	}

	res, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: all}})
	if err != nil {
		t.Fatal(err)
	}
	if res.NewEvents != len(all)-len(first) || res.Duplicates != len(first) {
		t.Fatalf("write over a version 3 state: %+v, want %d new and %d duplicates", res, len(all)-len(first), len(first))
	}
	if got := buckets(t, rdb); !equalDump(got, want) {
		t.Fatalf("buckets after a version 3 state differ:\n%s", dumpDiff(got, want))
	}
	blob := must(stateBlob(rdb.HGetAll(ctx, key).Val()))
	if blob[0] != stateVersion {
		t.Fatalf("state rewritten as version %d, want %d", blob[0], stateVersion)
	}
	checkDecodes(t, []byte(blob), all, applied(contrib.Compute(all, contrib.DefaultSLA())))
}

// BenchmarkStateCodec encodes and decodes the states of a week of the load generator's traffic,
// in version 3 and in version 5: the write path does both for every ticket it changes.
func BenchmarkStateCodec(b *testing.B) {
	g := newSimTraffic(1, 50, 5, 5000, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 7*24*time.Hour)
	var states []ticketState
	for _, tk := range g.tickets {
		evs := slices.SortedFunc(slices.Values(tk.events), func(a, b contrib.Event) int {
			if contrib.Less(&a, &b) {
				return -1
			}
			if contrib.Less(&b, &a) {
				return 1
			}
			return 0
		})
		states = append(states, ticketState{Events: evs, Applied: contrib.Compute(evs, contrib.DefaultSLA()).Values})
	}
	encoders := []struct {
		name   string
		encode func(ticketState) []byte
	}{
		{"v3", func(s ticketState) []byte { return encodeStateV3(s.Events, s.Applied) }},
		{"v5", encodeState},
	}
	for _, enc := range encoders {
		b.Run("encode-"+enc.name, func(b *testing.B) {
			for i := range b.N {
				enc.encode(states[i%len(states)])
			}
		})
		blobs := make([][]byte, len(states))
		for i, s := range states {
			blobs[i] = enc.encode(s)
		}
		b.Run("decode-"+enc.name, func(b *testing.B) {
			for i := range b.N {
				if _, err := decodeState(blobs[i%len(blobs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzDecodeStateV5 feeds the decoder version 5 input: whatever decodes encodes and decodes to
// exactly the same events and figures.
func FuzzDecodeStateV5(f *testing.F) {
	evs, applied := variedLife()
	f.Add(encodeState(ticketState{Events: evs, Applied: applied})[1:])
	f.Add(encodeState(ticketState{Events: life("T-1", "ana", "billing", 0)})[1:])
	f.Add(encodeState(ticketState{Events: qaLife()})[1:])
	f.Add(encodeState(ticketState{Events: callLife()})[1:])
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := decodeState(append([]byte{5}, body...))
		if err != nil {
			return
		}
		again, err := decodeState(encodeState(s))
		if err != nil || !slices.Equal(again.Events, s.Events) || !maps.Equal(again.Applied, s.Applied) {
			t.Fatalf("re-encoding changed the state (%v):\n got %+v\nwant %+v", err, again, s)
		}
	})
}
