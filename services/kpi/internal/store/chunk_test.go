package store

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestStatePiecesRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 127, 128, 129, 700} {
		blob := []byte(strings.Repeat("x", n))
		for i := range blob {
			blob[i] = byte(i)
		}
		pieces := stateChunks(blob)
		h := map[string]string{}
		for i, p := range pieces {
			s := p.(string)
			if len(s) > stateChunk {
				t.Fatalf("%d bytes: piece %d of %d bytes, over %d", n, i, len(s), stateChunk)
			}
			if i < len(pieces)-1 && len(s) != stateChunk || i == len(pieces)-1 && len(s) == stateChunk {
				t.Fatalf("%d bytes: piece %d of %d bytes: only the last is shorter than %d", n, i, len(s), stateChunk)
			}
			f := "s"
			if i > 0 {
				f += strconv.Itoa(i)
			}
			h[f] = s
		}
		// A piece left behind by a longer state is not read.
		h["s"+strconv.Itoa(len(pieces))] = strings.Repeat("y", stateChunk)
		got, ok := stateBlob(h)
		if !ok || got != string(blob) {
			t.Fatalf("%d bytes: joined %d bytes (%v), want the blob back", n, len(got), ok)
		}
	}
	// A state written whole by an older release is read whole, whatever pieces a newer one left.
	whole := strings.Repeat("w", 300)
	if got, ok := stateBlob(map[string]string{"s": whole, "s1": strings.Repeat("y", stateChunk)}); !ok || got != whole {
		t.Fatalf("whole state read as %d bytes, want %d", len(got), len(whole))
	}
	if _, ok := stateBlob(map[string]string{"v": "1"}); ok {
		t.Fatal("a hash without a state reported one")
	}
}

// A ticket state is stored in pieces that keep the ticket's hash a listpack; one written whole by
// an older release still reads, and the next write stores it in pieces.
func TestTicketStateInPiecesAndWhole(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	w := NewWriter(rdb, sla, 0, quiet)
	batch := []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}
	if _, err := w.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	key := TicketKey("acme", "T-1")
	h := rdb.HGetAll(ctx, key).Val()
	blob, _ := stateBlob(h)
	if len(blob) <= stateChunk || h["s1"] == "" {
		t.Fatalf("fixture: state of %d bytes in fields %v, want more than one piece", len(blob), slicesKeys(h))
	}
	if enc := rdb.ObjectEncoding(ctx, key).Val(); enc != "listpack" {
		t.Fatalf("ticket hash encoded as %q, want listpack", enc)
	}
	want := buckets(t, rdb)

	// As an older release stored it: the state whole in "s".
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, key, "v", h["v"], "s", blob, "t", h["t"]).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := w.Write(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.NewEvents != 0 || res.Duplicates != len(batch[0].Events) {
		t.Fatalf("redelivery over a whole state: %+v, want every event a duplicate", res)
	}
	if got := buckets(t, rdb); !equalDump(got, want) {
		t.Fatalf("redelivery over a whole state changed the buckets:\n%s", dumpDiff(got, want))
	}
	// A new event: the state is stored in pieces again, and the whole one is gone.
	more := life("T-1", "ana", "billing", 0)[:1]
	more[0].Key++
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: more}}); err != nil {
		t.Fatal(err)
	}
	h = rdb.HGetAll(ctx, key).Val()
	if len(h["s"]) != stateChunk {
		t.Fatalf("state after a new event starts with %d bytes, want a piece of %d", len(h["s"]), stateChunk)
	}
	if st, err := decodeState([]byte(must(stateBlob(h)))); err != nil || len(st.Events) != len(batch[0].Events)+1 {
		t.Fatalf("state after a new event: %d events (%v), want %d", len(st.Events), err, len(batch[0].Events)+1)
	}
}

func must(s string, ok bool) string {
	if !ok {
		return ""
	}
	return s
}

// Pending deltas are stored in pieces too, so a ticket still being worked on keeps a listpack;
// a crash leaves them for the redelivery, which applies them once and clears every piece; and
// pending deltas an older release stored whole are read and cleared the same way.
func TestPendingDeltasInPieces(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	batch := []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}
	if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	want := buckets(t, rdb)
	key := TicketKey("acme", "T-1")

	// stored crashes a writer right after it stored the batch, and returns the ticket's hash.
	stored := func() map[string]string {
		t.Helper()
		testenv.Flush(t, rdb)
		crashing := NewWriter(rdb, sla, 0, quiet)
		crashing.SetHook(func(s string) error {
			if s == StepStored {
				return errCrash
			}
			return nil
		})
		if _, err := crashing.Write(ctx, batch); !errors.Is(err, errCrash) {
			t.Fatalf("want the simulated crash, got %v", err)
		}
		return rdb.HGetAll(ctx, key).Val()
	}
	redeliver := func(name string) {
		t.Helper()
		res, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, batch)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.NewEvents != 0 || res.Duplicates != len(batch[0].Events) {
			t.Fatalf("%s: %+v, want every event a duplicate", name, res)
		}
		if got := buckets(t, rdb); !equalDump(got, want) {
			t.Fatalf("%s changed the buckets:\n%s", name, dumpDiff(got, want))
		}
		for f := range rdb.HGetAll(ctx, key).Val() {
			if f[0] == 'p' {
				t.Fatalf("%s left pending field %q", name, f)
			}
		}
	}

	h := stored()
	first, more := h["p1"], h["p1_1"]
	if len(first) != stateChunk || more == "" {
		t.Fatalf("fixture: pending deltas in fields %v, want more than one piece", slicesKeys(h))
	}
	if enc := rdb.ObjectEncoding(ctx, key).Val(); enc != "listpack" {
		t.Fatalf("ticket hash with pending deltas encoded as %q, want listpack", enc)
	}
	redeliver("redelivery over pending pieces")

	// As an older release stored them: whole, in "p1".
	h = stored()
	whole := h["p1"]
	var extra []string
	for k := 1; ; k++ {
		if _, ok := h[pendingField(1, k)]; !ok {
			break
		}
		whole += h[pendingField(1, k)]
		extra = append(extra, pendingField(1, k))
	}
	if err := rdb.HDel(ctx, key, extra...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, key, "p1", whole).Err(); err != nil {
		t.Fatal(err)
	}
	redeliver("redelivery over whole pending deltas")
}

// A ticket still open is stored as a listpack after its pending deltas are cleared.
func TestOpenTicketHashStaysListpack(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	open := life("T-1", "ana", "billing", 0)[:3]
	if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: open}}); err != nil {
		t.Fatal(err)
	}
	key := TicketKey("acme", "T-1")
	if enc := rdb.ObjectEncoding(ctx, key).Val(); enc != "listpack" {
		t.Fatalf("open ticket's hash encoded as %q, want listpack (fields %v)", enc, slicesKeys(rdb.HGetAll(ctx, key).Val()))
	}
}

// casScript writes only at the version it was given, sets the fields it names and removes the
// ones listed after them.
func TestCASScript(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	key := TicketKey("acme", "T-1")
	if err := rdb.HSet(ctx, key, "v", "3", "s", strings.Repeat("a", stateChunk), "s1", strings.Repeat("b", stateChunk), "s2", "c", "t", "10").Err(); err != nil {
		t.Fatal(err)
	}
	before := rdb.HGetAll(ctx, key).Val()
	if n, err := casScript.Run(ctx, rdb, []string{key}, "2", 4, "v", "3", "s", "x", "s1", "s2").Int(); err != nil || n != 0 {
		t.Fatalf("stale version: %d, %v; want 0", n, err)
	}
	if got := rdb.HGetAll(ctx, key).Val(); !maps.Equal(got, before) {
		t.Fatalf("stale version changed the hash: %v, want %v", got, before)
	}
	if n, err := casScript.Run(ctx, rdb, []string{key}, "3", 6, "v", "4", "s", "x", "p4", "d", "s1", "s2").Int(); err != nil || n != 1 {
		t.Fatalf("current version: %d, %v; want 1", n, err)
	}
	want := map[string]string{"v": "4", "s": "x", "p4": "d", "t": "10"}
	if got := rdb.HGetAll(ctx, key).Val(); !maps.Equal(got, want) {
		t.Fatalf("after the write: %v, want %v", got, want)
	}
	// A ticket never written has version 0.
	if n, err := casScript.Run(ctx, rdb, []string{TicketKey("acme", "T-2")}, "0", 4, "v", "1", "s", "y").Int(); err != nil || n != 1 {
		t.Fatalf("new ticket: %d, %v; want 1", n, err)
	}
}
