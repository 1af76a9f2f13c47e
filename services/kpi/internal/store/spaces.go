package store

import (
	"context"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Generations tells which keyspaces a tenant's live events are written to: its current key
// generation and, while a rebuild runs, the rebuild's target (package generation).
type Generations interface {
	// Spaces queues on pipe the read of tenant's generation state; once the pipeline ran, the
	// returned function answers the keyspaces, the current one first.
	Spaces(ctx context.Context, pipe redis.Pipeliner, tenant string) func() ([]string, error)
}

// SetGenerations makes the writer apply every ticket without a Keyspace to each keyspace g
// names for its tenant. The state is read in the first round trip of every batch, after the
// batch's messages were fetched: a message stored after a rebuild recorded its target is
// therefore always written to the target as well. Writing a ticket into a keyspace is a pure
// function of its event set, so a ticket the rebuild also replays there is not counted twice.
func (w *Writer) SetGenerations(g Generations) { w.gens = g }

// spaceCache remembers the keyspaces last read per tenant, so a batch's first round trip can
// already read the tickets under the right keys; it is only a guess, checked by that same trip.
type spaceCache struct {
	mu sync.Mutex
	m  map[string][]string
}

// knownSpaces answers, per tenant of tickets, the keyspaces last read (the tenant alone when none).
func (w *Writer) knownSpaces(tickets []Ticket) map[string][]string {
	out := map[string][]string{}
	w.spaces.mu.Lock()
	defer w.spaces.mu.Unlock()
	for i := range tickets {
		t := tickets[i].Tenant
		if _, ok := out[t]; ok || tickets[i].Keyspace != "" {
			continue
		}
		if sp, ok := w.spaces.m[t]; ok {
			out[t] = sp
		} else {
			out[t] = []string{t}
		}
	}
	return out
}

// learn records fresh and tells whether it differs from guessed.
func (w *Writer) learn(guessed, fresh map[string][]string) bool {
	w.spaces.mu.Lock()
	defer w.spaces.mu.Unlock()
	if w.spaces.m == nil {
		w.spaces.m = map[string][]string{}
	}
	changed := false
	for t, sp := range fresh {
		w.spaces.m[t] = sp
		if !slices.Equal(guessed[t], sp) {
			changed = true
		}
	}
	// Bounded by the tenants that write; a tenant is a configured customer, not request data.
	return changed
}

// expand makes one work item per ticket and keyspace it goes to.
func expand(tickets []Ticket, spaces map[string][]string) []*work {
	todo := make([]*work, 0, len(tickets))
	for i := range tickets {
		t := &tickets[i]
		if t.Keyspace != "" {
			todo = append(todo, &work{t: t, space: t.Keyspace, primary: true, key: TicketKey(t.Keyspace, t.ID)})
			continue
		}
		sp := spaces[t.Tenant]
		if len(sp) == 0 {
			sp = []string{t.Tenant}
		}
		for i, s := range sp {
			todo = append(todo, &work{t: t, space: s, primary: i == 0, key: TicketKey(s, t.ID)})
		}
	}
	return todo
}
