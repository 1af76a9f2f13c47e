package store

import (
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// oldState is a version 1 ticket state, as the release before event sequences stored it:
// life("T-1", "ana", "billing", 0) with the created event at priority high and status new, and
// its contribution.
const oldState = "0104026375000762696c6c696e6703616e61056b04f889dc3d94050180faf3fde56500020102900600d107f889dc3f" +
	"940502c0a907010003010000e81df889dc4c940503c0948b010301010102009b1ff889dc4d94050580d98004010001" +
	"0150000123f889dc4f94050780d5a5060100010100041c6103c2a63b00026103000180be9201610300060261030007" +
	"026103000e02610300f312026103020402610300058097930561030008026103000a02610300be53026103040b0261" +
	"03000c086103000d0267020500026702000180be9201670200060267020007026702000e02670200f3120267020204" +
	"02670200058097930567020008026702000a02670200be53026702040b026702000c086702000d02"

func TestStateCodecDecodesVersion1(t *testing.T) {
	b, err := hex.DecodeString(oldState)
	if err != nil {
		t.Fatal(err)
	}
	want := life("T-1", "ana", "billing", 0)
	want[0].Priority = tpv1.Priority_PRIORITY_HIGH
	want[0].Status = tpv1.TicketStatus_TICKET_STATUS_NEW
	got, err := decodeState(b)
	if err != nil {
		t.Fatalf("decode version 1: %v", err)
	}
	if !slices.Equal(got.Events, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", got.Events, want)
	}
	if len(got.Applied) != 28 {
		t.Fatalf("%d applied figures, want 28", len(got.Applied))
	}
	resolution := contrib.Key{
		Cell:  contrib.Cell{Kind: bucket.Agent, ID: "ana", Hour: want[3].AtMillis / 3_600_000},
		Field: contrib.CounterField(bucket.ResolutionSumMillis),
	}
	if v := got.Applied[resolution]; v != 90*60_000 {
		t.Fatalf("ana's resolution time %d ms, want %d", v, 90*60_000)
	}
	// Rewritten, it is a state of the current version holding the same.
	again := encodeState(got)
	if again[0] != stateVersion {
		t.Fatalf("rewritten as version %d, want %d", again[0], stateVersion)
	}
	back, err := decodeState(again)
	if err != nil || !slices.Equal(back.Events, want) || !maps.Equal(back.Applied, got.Applied) {
		t.Fatalf("version 1 state rewritten as version %d changed (%v)", stateVersion, err)
	}
}

func TestStateCodecKeepsSequences(t *testing.T) {
	evs := life("T-1", "ana", "billing", 0)
	evs[0].Priority = tpv1.Priority_PRIORITY_URGENT
	evs[1].Sequence = 1
	evs[2].Sequence = 300
	evs[3].Sequence = 1<<64 - 1
	plain := life("T-1", "ana", "billing", 0)
	plain[0].Priority = tpv1.Priority_PRIORITY_URGENT
	without := encodeState(ticketState{Events: plain})
	with := encodeState(ticketState{Events: evs})
	got, err := decodeState(with)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Events, evs) {
		t.Fatalf("events:\n got %+v\nwant %+v", got.Events, evs)
	}
	// 1, 2 and 10 bytes of sequence; the flag is free.
	if extra := len(with) - len(without); extra != 13 {
		t.Fatalf("sequences cost %d bytes, want 13", extra)
	}
}

func TestCodecRefusesUnknownVersions(t *testing.T) {
	state := encodeState(ticketState{Events: life("T-1", "ana", "billing", 0)})
	pending := encodePending(pendingEntry{Deltas: map[contrib.Key]int64{{Cell: contrib.Cell{Kind: bucket.Agent, ID: "ana"}}: 1}})
	if pending[0] != 1 {
		t.Fatalf("pending deltas written as version %d, want 1 (unchanged, readable by the previous release)", pending[0])
	}
	// With drill-down index cells they are version 2, which that release refuses rather than
	// taking the cells for figures; this one reads both.
	indexed := encodePending(pendingEntry{Deltas: map[contrib.Key]int64{{Cell: contrib.Cell{Kind: bucket.Tenant}, Field: contrib.TicketsField}: 1}})
	if indexed[0] != 2 {
		t.Fatalf("pending deltas with index cells written as version %d, want 2", indexed[0])
	}
	if p, err := decodePending(indexed); err != nil || len(p.Deltas) != 1 {
		t.Fatalf("pending version 2 read as %+v, %v", p, err)
	}
	tests := []struct {
		name    string
		decode  func([]byte) error
		give    []byte
		version byte
	}{
		{"state version 7", func(b []byte) error { _, err := decodeState(b); return err }, state, 7},
		{"state version 0", func(b []byte) error { _, err := decodeState(b); return err }, state, 0},
		{"pending version 3", func(b []byte) error { _, err := decodePending(b); return err }, pending, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := slices.Clone(tt.give)
			b[0] = tt.version
			err := tt.decode(b)
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v, want errCorrupt", err)
			}
			if want := "corrupt ticket state: format version " + string('0'+rune(tt.version)); err.Error() != want {
				t.Fatalf("error %q, want %q", err, want)
			}
		})
	}
}

func TestTombstoneCodec(t *testing.T) {
	evs := life("T-1", "ana", "billing", 0)
	st := ticketState{Events: evs, Applied: contrib.Compute(evs, contrib.DefaultSLA()).Values}
	b := encodeState(st.tombstone())
	if b[0] != tombstoneVersion {
		t.Fatalf("tombstone written as version %d, want %d", b[0], tombstoneVersion)
	}
	// Version, empty string table, count, 4 bytes per event.
	if want := 3 + 4*len(evs); len(b) != want {
		t.Fatalf("tombstone of %d events is %d bytes, want %d", len(evs), len(b), want)
	}
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Compacted || len(got.Events) != 0 || len(got.Applied) != 0 || len(got.Seen) != len(evs) {
		t.Fatalf("decoded tombstone %+v", got)
	}
	for _, ev := range evs {
		if !got.saw(ev.Key) {
			t.Fatalf("tombstone lost key %x", ev.Key)
		}
	}
	if got.saw(contrib.KeyOf("T-1/new")) {
		t.Fatal("tombstone claims a key it never had")
	}
	// A current state is still version 3.
	if s := encodeState(st); s[0] != stateVersion {
		t.Fatalf("state written as version %d, want %d", s[0], stateVersion)
	}
}

func TestTombstoneCodecRefusesMalformed(t *testing.T) {
	valid := encodeTombstone([]uint32{1, 2, 3})
	unsorted := encodeTombstone([]uint32{2, 1})
	repeated := encodeTombstone([]uint32{1, 1})
	withTable := append([]byte{tombstoneVersion, 1, 1, 'x', 0}, nil...)
	tests := []struct {
		name string
		give []byte
	}{
		{"truncated", valid[:len(valid)-1]},
		{"trailing byte", append(slices.Clone(valid), 0)},
		{"unsorted keys", unsorted},
		{"repeated key", repeated},
		{"string table", withTable},
		{"count past the end", []byte{tombstoneVersion, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8}},
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

// FuzzDecodeTombstone feeds the state decoder tombstone-shaped input: whatever decodes is a sorted
// set of keys that encodes and decodes to the same keys.
func FuzzDecodeTombstone(f *testing.F) {
	f.Add(encodeTombstone(nil))
	f.Add(encodeTombstone([]uint32{1, 2, 1 << 31}))
	f.Add(encodeState(ticketState{Events: life("T-1", "ana", "billing", 0)}.tombstone()))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := append([]byte{tombstoneVersion}, body...)
		s, err := decodeState(b)
		if err != nil {
			return
		}
		if !s.Compacted || !slices.IsSorted(s.Seen) || len(slices.Compact(slices.Clone(s.Seen))) != len(s.Seen) {
			t.Fatalf("decoded %+v: want a tombstone of sorted distinct keys", s)
		}
		again, err := decodeState(encodeState(s))
		if err != nil || !again.Compacted || !slices.Equal(again.Seen, s.Seen) {
			t.Fatalf("re-encoding changed the tombstone: %+v, %v", again, err)
		}
	})
}
