package delivered

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func open(t *testing.T, ttl time.Duration) (*Store, jetstream.JetStream) {
	t.Helper()
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url)
	s, err := Open(context.Background(), js, ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

var at = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// What is recorded for a receiver is found for it, with its delivery and time, and for no
// other receiver or tenant.
func TestRecordThenLookup(t *testing.T) {
	s, _ := open(t, time.Hour)
	ctx := context.Background()
	if err := s.Record(ctx, "acme", "hook", []string{"sla.t.T-1.1#1", "sla.t.T-2.1#3"}, Entry{Delivery: "g1.4", At: at}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tenant, receiver string
		want                   []string
	}{
		{"same receiver", "acme", "hook", []string{"sla.t.T-1.1#1", "sla.t.T-2.1#3"}},
		{"other receiver", "acme", "mail", nil},
		{"other tenant", "globex", "hook", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Lookup(ctx, tt.tenant, tt.receiver, []string{"sla.t.T-1.1#1", "sla.t.T-1.1#2", "sla.t.T-2.1#3"})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("found %v, want %v", got, tt.want)
			}
			for _, ref := range tt.want {
				if e, ok := got[ref]; !ok || e.Delivery != "g1.4" || !e.At.Equal(at) {
					t.Errorf("%s: %+v, %v; want delivery g1.4 at %s", ref, e, ok, at)
				}
			}
		})
	}
}

// Ids are helpdesk data: any of them makes a valid key of a fixed shape, and two ids that
// differ only in what a key cannot hold stay apart.
func TestOddIds(t *testing.T) {
	s, _ := open(t, time.Hour)
	ctx := context.Background()
	refs := []string{
		"sla.t.T 1.1#1", "sla.t.T*1.1#1", "sla.t.T>1.1#1", "sla.t.Tö€1.1#1", "sla.t.{x}.1#1",
		"sla.t." + strings.Repeat("long", 5000) + ".1#1", "", "sla.t.T.1.1#1", "sla.t.T_1.1#1",
	}
	if err := s.Record(ctx, "acme", "hook with spaces.and.dots", refs[:5], Entry{Delivery: "g.1", At: at}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(ctx, "acme", "hook with spaces.and.dots", refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range refs {
		if _, ok := got[ref]; ok != (i < 5) {
			t.Errorf("%.40q found: %v, want %v", ref, ok, i < 5)
		}
	}
}

var keyShape = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}\.[0-9a-f]{16}\.[0-9a-f]{32}$`)

func FuzzKey(f *testing.F) {
	f.Add("hook", "sla-first-response.t.T-77.1#2")
	f.Add("", "")
	f.Add("a.b*c>d", "x y\x00z#1")
	f.Fuzz(func(t *testing.T, receiver, ref string) {
		if k := Key("acme-eu_1", receiver, ref); !keyShape.MatchString(k) {
			t.Errorf("Key(%q, %q) = %q", receiver, ref, k)
		}
	})
}

// A burst bigger than the requests kept in flight is recorded and found whole.
func TestManyChanges(t *testing.T) {
	s, _ := open(t, time.Hour)
	ctx := context.Background()
	refs := make([]string, 3*maxInFlight+7)
	for i := range refs {
		refs[i] = fmt.Sprintf("sla.t.T-%04d.1#1", i)
	}
	if err := s.Record(ctx, "acme", "hook", refs, Entry{Delivery: "g.1", At: at}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(ctx, "acme", "hook", append(refs, "sla.t.other.1#1"))
	if err != nil || len(got) != len(refs) {
		t.Fatalf("found %d of %d: %v", len(got), len(refs), err)
	}
}

// The bucket is on file storage, keeps one value per key, bounds values, and forgets an entry
// after the TTL.
func TestBucketSettingsAndTTL(t *testing.T) {
	s, js := open(t, 2*time.Second)
	ctx := context.Background()
	st, err := js.Stream(ctx, "KV_"+Bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.MaxAge != 2*time.Second || c.Storage != jetstream.FileStorage || c.MaxMsgsPerSubject != 1 || c.MaxMsgSize != maxValue {
		t.Errorf("bucket stream: max age %s, storage %v, history %d, max value %d", c.MaxAge, c.Storage, c.MaxMsgsPerSubject, c.MaxMsgSize)
	}
	if err := s.Record(ctx, "acme", "hook", []string{"e#1"}, Entry{Delivery: "g.1", At: at}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Lookup(ctx, "acme", "hook", []string{"e#1"}); err != nil || len(got) != 1 {
		t.Fatalf("right after: %v %v", got, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.Lookup(ctx, "acme", "hook", []string{"e#1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("entry still there 10s after a TTL of 2s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Opening again with another TTL updates the bucket in place.
	if _, err := Open(ctx, js, time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	if info, err = st.Info(ctx); err != nil || info.Config.MaxAge != time.Hour {
		t.Errorf("reopened: %v %v", info.Config.MaxAge, err)
	}
}

// Without the bucket, neither a lookup nor a record pretends: both fail, naming what failed.
func TestUnavailable(t *testing.T) {
	s, js := open(t, time.Hour)
	ctx := context.Background()
	if err := js.DeleteKeyValue(ctx, Bucket); err != nil {
		t.Fatal(err)
	}
	_, err := s.Lookup(ctx, "acme", "hook", []string{"e#1", "e#2"})
	if err == nil || err.Error() != "look up delivered changes of acme/hook: nats: no responders available for request" {
		t.Errorf("Lookup = %v", err)
	}
	err = s.Record(ctx, "acme", "hook", []string{"e#1"}, Entry{Delivery: "g.1", At: at})
	if err == nil || err.Error() != "record delivered changes of acme/hook: nats: no response from stream" {
		t.Errorf("Record = %v", err)
	}
}
