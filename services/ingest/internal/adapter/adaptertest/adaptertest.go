// Package adaptertest runs an adapter over recorded deliveries and compares what it makes of them
// with golden files, for the tests of every source package.
//
// A case is testdata/<name>.json (the body, exactly as the source sends it) with an optional
// testdata/<name>.headers ("Name: value" lines, e.g. the event name Help Scout sends in a header)
// and its expectation testdata/<name>.golden.json: the canonical events and skips, or the
// problems of a rejected delivery. `go test -run Golden -update` rewrites the golden files from
// the adapter's output; read the diff before committing it.
package adaptertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

var update = flag.Bool("update", false, "rewrite the golden files from the adapters' output")

// Received is the receive time of every delivery a golden test replays.
var Received = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// Outcome is what a golden file holds.
type Outcome struct {
	Events   []canonical.Event   `json:"events,omitempty"`
	Skipped  []adapter.Skip      `json:"skipped,omitempty"`
	Problems []canonical.Problem `json:"problems,omitempty"`
}

// Delivery reads the case name of dir as a delivery.
func Delivery(t testing.TB, dir, name string) adapter.Delivery {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if raw, err := os.ReadFile(filepath.Join(dir, name+".headers")); err == nil {
		if h, err = parseHeaders(raw); err != nil {
			t.Fatalf("%s.headers: %v", name, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return delivery(h, body)
}

// delivery is the delivery of body with the headers h, as verification passes it on.
func delivery(h http.Header, body []byte) adapter.Delivery {
	d := adapter.Delivery{Header: h, Body: body, Received: Received}
	// The delivery ids the sources send.
	for _, name := range deliveryIDHeaders {
		if v := h.Get(name); v != "" {
			d.DeliveryID = v
		}
	}
	return d
}

// deliveryIDHeaders are the headers in which the sources send their delivery ids.
var deliveryIDHeaders = []string{"X-Chatwoot-Delivery", "X-Zammad-Delivery", "Webhook-Id"}

// parseHeaders reads the "Name: value" lines of a .headers file; blank lines and lines starting
// with # are skipped.
func parseHeaders(raw []byte) (http.Header, error) {
	h := http.Header{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%q is not Name: value", line)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, sc.Err()
}

// Cases returns the names of the cases in dir (the bodies, without golden files and
// expect.json), sorted: the order in which a recorded conversation is replayed.
func Cases(t testing.TB, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		base := filepath.Base(p)
		if strings.HasSuffix(base, ".golden.json") || base == "expect.json" {
			continue
		}
		names = append(names, strings.TrimSuffix(base, ".json"))
	}
	slices.Sort(names)
	return names
}

// Valid fails t unless events pass canonical validation as the webhook handler runs it for a
// delivery received at Received.
func Valid(t testing.TB, events []canonical.Event) {
	t.Helper()
	if err := canonical.Validate(events, canonical.Options{Tenant: "acme", Now: Received, MaxFutureSkew: time.Hour}); err != nil {
		t.Fatalf("the adapter made events that are not valid canonical events: %v\n%+v", err, events)
	}
}

// Golden replays every case in dir through a and compares the outcome with its golden file. The
// events must also pass canonical validation, as the webhook handler will run it.
func Golden(t *testing.T, a adapter.Adapter, dir string) {
	t.Helper()
	names := Cases(t, dir)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			d := Delivery(t, dir, name)
			res, err := a.Map(d)
			var got Outcome
			if err != nil {
				var ps canonical.Problems
				if !errors.As(err, &ps) {
					t.Fatalf("Map: %v (want canonical.Problems for a rejected delivery)", err)
				}
				got.Problems = ps.List
			} else {
				got.Events, got.Skipped = res.Events, res.Skipped
				Valid(t, res.Events)
			}
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON = append(gotJSON, '\n')
			golden := filepath.Join(dir, name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, gotJSON, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run the test with -update to write it, then check it by hand)", err)
			}
			if !bytes.Equal(gotJSON, want) {
				t.Errorf("%s differs from %s:\n got: %s\nwant: %s", name, golden, gotJSON, want)
			}
		})
	}
	if len(names) == 0 {
		t.Fatalf("no cases in %s", dir)
	}
}

// LookupOutcome is what a delivery whose lookup at the vendor's API is answered one way must
// come to: with Wait > 0, an error with that RetryAfter (the webhook answers 503); otherwise one
// skip with reason Skip. InErr must stand in the error or in the skip's detail.
type LookupOutcome struct {
	Wait  time.Duration
	Skip  string
	InErr string
}

// CheckLookupOutcome checks Map's result and error against want; an error must show none of
// secrets (the access token, the API's URL).
func CheckLookupOutcome(t testing.TB, res adapter.Result, err error, want LookupOutcome, secrets ...string) {
	t.Helper()
	if want.Wait > 0 {
		ra, ok := errors.AsType[interface {
			error
			RetryAfter() time.Duration
		}](err)
		if !ok || ra.RetryAfter() != want.Wait || !strings.Contains(err.Error(), want.InErr) {
			t.Fatalf("got %+v, %v; want an error with RetryAfter %v mentioning %q", res, err, want.Wait, want.InErr)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error shows %q: %v", s, err)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != want.Skip || !strings.Contains(res.Skipped[0].Detail, want.InErr) {
		t.Errorf("result %+v, want one %s skip mentioning %q", res, want.Skip, want.InErr)
	}
}
