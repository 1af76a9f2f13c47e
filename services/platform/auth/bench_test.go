package auth_test

import (
	"context"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// BenchmarkGateCheckAPIKey is what the gate adds to every API request authenticated by key:
// parse the header, hash the key, look it up, check tenant and scope. Compare it with the
// request it guards (ingest's BenchmarkIngestPost).
func BenchmarkGateCheckAPIKey(b *testing.B) {
	reg, ks := newGateRegistry(b)
	g := auth.NewGate(reg, nil)
	header := "Bearer " + ks.acme
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Check(ctx, header, "acme", auth.EventsWrite); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGateRefuseUnknownKey is the cost of turning away a well-formed key that is not in
// the registry: what a flood of forged keys costs before any body is read.
func BenchmarkGateRefuseUnknownKey(b *testing.B) {
	reg, _ := newGateRegistry(b)
	g := auth.NewGate(reg, nil)
	key, _, err := auth.NewKey()
	if err != nil {
		b.Fatal(err)
	}
	header := "Bearer " + key
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Check(ctx, header, "acme", auth.EventsWrite); err == nil {
			b.Fatal("an unknown key passed")
		}
	}
}
