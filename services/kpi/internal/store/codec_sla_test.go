package store

import (
	"encoding/binary"
	"fmt"
	"maps"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
)

// The channel and tags SLA policies match on are kept with the events.
func TestStateCodecKeepsChannelAndTags(t *testing.T) {
	evs := life("T-1", "ana", "billing", 0)
	evs[0].Channel, evs[0].Tags = "email", "vip"+contrib.TagSep+"enterprise"
	got, err := decodeState(encodeState(ticketState{Events: evs}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if got.Events[i] != evs[i] {
			t.Fatalf("event %d: got %+v want %+v", i, got.Events[i], evs[i])
		}
	}
}

// encodeOldState encodes evs and applied as a ticket state of format version 1 (no sequences) or 2
// (sequences; neither has channel and tags), as releases before this one wrote them.
func encodeOldState(version uint64, evs []contrib.Event, applied map[contrib.Key]int64) []byte {
	e := newEncoder(version)
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
		if version == 1 {
			e.uvarint(uint64(ev.Priority)<<8 | uint64(ev.Status)<<4 | uint64(ev.Public))
		} else {
			hasSeq := uint64(0)
			if ev.Sequence != 0 {
				hasSeq = 1
			}
			e.uvarint(uint64(ev.Priority)<<9 | uint64(ev.Status)<<5 | uint64(ev.Public)<<1 | hasSeq)
			if hasSeq == 1 {
				e.uvarint(ev.Sequence)
			}
		}
		e.uvarint(uint64(ev.Score))
	}
	encodeValues(e, applied)
	return e.bytes()
}

// checkDecodes fails unless b decodes to exactly evs and applied.
func checkDecodes(t *testing.T, b []byte, evs []contrib.Event, applied map[contrib.Key]int64) {
	t.Helper()
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != len(evs) || !maps.Equal(got.Applied, applied) {
		t.Fatalf("version %d state lost data", b[0])
	}
	for i := range evs {
		if got.Events[i] != evs[i] {
			t.Fatalf("event %d: got %+v want %+v", i, got.Events[i], evs[i])
		}
	}
}

// A state stored by the first format (version 1: events without sequence, channel and tags) still
// decodes, so an upgrade recomputes nothing it need not.
func TestStateCodecReadsVersion1(t *testing.T) {
	evs := life("T-1", "ana", "billing", 0)
	applied := contrib.Compute(evs, contrib.DefaultSLA()).Values
	b := encodeOldState(1, evs, applied)
	checkDecodes(t, b, evs, applied)
	b[0] = stateVersion + 1
	want := fmt.Sprintf("corrupt ticket state: format version %d", stateVersion+1)
	if _, err := decodeState(b); err == nil || err.Error() != want {
		t.Fatalf("a later version decodes with %v, want %s", err, want)
	}
}

// A state of version 2 (events with sequences, without channel and tags) still decodes.
func TestStateCodecReadsVersion2(t *testing.T) {
	evs := life("T-1", "ana", "billing", 0)
	evs[2].Sequence = 300
	applied := contrib.Compute(evs, contrib.DefaultSLA()).Values
	checkDecodes(t, encodeOldState(2, evs, applied), evs, applied)
}
