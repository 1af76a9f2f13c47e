package dispatch

import (
	"context"
	"encoding/base64"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/routing"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// routingOf loads a routing file whose receivers are webhooks named by the first line, each
// posting to a real listener that answers 200: receivers "a,b" then the rest of the file.
func routingOf(t *testing.T, names, rest string) *Routing {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	var b strings.Builder
	b.WriteString("receivers:\n")
	for _, name := range strings.Split(names, ",") {
		b.WriteString("  - name: " + name + "\n    webhook: {url: \"" + srv.URL + "\", secrets: [{env: SECRET}]}\n")
	}
	b.WriteString(rest)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a test key of some length"))
	cfg, err := routing.Parse("routing.yaml", t.TempDir(), []byte(b.String()), func(string) string { return secret })
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRouting(cfg, receiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// escalationChange is change seq of escalation id of tenant acme.
func escalationChange(id string, seq int64, state tpv1.EscalationState, labels map[string]string) *tpv1.EscalationChange {
	kind := tpv1.ChangeKind_CHANGE_KIND_TRIGGERED
	if state == tpv1.EscalationState_ESCALATION_STATE_RESOLVED {
		kind = tpv1.ChangeKind_CHANGE_KIND_RESOLVED
	}
	l := map[string]string{"tenant": "acme"}
	maps.Copy(l, labels)
	return &tpv1.EscalationChange{Kind: kind, Sequence: seq, At: timestamppb.New(t0),
		Escalation: &tpv1.Escalation{Id: id, Tenant: "acme", Rule: l["rule"], SubjectKind: "ticket", State: state, Labels: l}}
}

var openState = tpv1.EscalationState_ESCALATION_STATE_OPEN

// A change goes on every route that takes it (continue: true lets the next sibling try), each
// time with that route's group; one no child route takes stays on the root.
func TestRouteStage(t *testing.T) {
	r := routingOf(t, "hook,night", `route:
  receiver: hook
  group_by: [tenant, team]
  routes:
    - matchers: ['team="billing"']
      receiver: night
      continue: true
    - matchers: ['rule="r"']
      receiver: hook
`)
	tests := []struct {
		name      string
		give      map[string]string
		wantPaths []string
	}{
		{"two routes", map[string]string{"rule": "r", "team": "billing"}, []string{"route.routes[0]", "route.routes[1]"}},
		{"the root", map[string]string{"rule": "other", "team": "support"}, []string{"route"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := escalationChange("r.t.T-1.1", 1, openState, tt.give)
			out, err := routeStage{root: r.Config.Root}.exec(context.Background(), quiet, []*notice{newNotice(c, t0)})
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, n := range out {
				paths = append(paths, n.route.Path)
				wantKey, wantLabels := n.route.GroupKey(Labels(c))
				if n.key != wantKey || !maps.Equal(n.groupLabels, wantLabels) || n.gid != deliveries.GroupID(n.route.Receiver, wantKey) {
					t.Errorf("%s: group %q %v %q", n.route.Path, n.key, n.groupLabels, n.gid)
				}
				if got := (&tpv1.EscalationChange{}); proto.Unmarshal(n.data, got) != nil || !proto.Equal(got, c) {
					t.Errorf("%s: data does not decode to the change", n.route.Path)
				}
			}
			if !slices.Equal(paths, tt.wantPaths) {
				t.Errorf("routes %v, want %v", paths, tt.wantPaths)
			}
		})
	}
}

// Each muter holds back what it should, with its reason and kind, and lets the rest through.
func TestMuters(t *testing.T) {
	r := routingOf(t, "hook,off", `route:
  receiver: hook
  routes:
    - matchers: ['team="night"']
      receiver: hook
      quiet_hours:
        time_zone: UTC
        hours: {mon-sun: "00:00-24:00"}
silences:
  - matchers: ['rule="noisy"']
    starts: 2020-01-01T00:00:00Z
    ends: 2099-01-01T00:00:00Z
    comment: "known noisy rule"
inhibit_rules:
  - source_matchers: ['rule="low-csat"']
    target_matchers: ['subject_kind="ticket"']
    equal: [tenant, agent]
`)
	store := deliveries.New(testenv.Redis(t), time.Hour, 100)
	ctx := context.Background()
	if err := store.Disable(ctx, "off", deliveries.Disabled{Reason: "endpoint gone (410)", At: t0, Fingerprint: r.senders["off"].fingerprint}); err != nil {
		t.Fatal(err)
	}
	source := map[string]string{"tenant": "acme", "rule": "low-csat", "agent": "ana", "escalation_id": "low-csat.a.ana.1"}
	tests := []struct {
		name             string
		muter            muter
		labels           map[string]string
		receiver         string
		open             []map[string]string
		wantReason, kind string
	}{
		{"silenced", silences{r.Config}, map[string]string{"rule": "noisy"}, "hook", nil, "silenced until 2099-01-01T00:00:00Z: known noisy rule", "silence"},
		{"not silenced", silences{r.Config}, map[string]string{"rule": "r"}, "hook", nil, "", ""},
		{"quiet hours", quietHours{}, map[string]string{"team": "night"}, "hook", nil, "quiet hours (", "quiet_hours"},
		{"no quiet hours", quietHours{}, map[string]string{"team": "day"}, "hook", nil, "", ""},
		{"inhibited", inhibitions{r.Config}, map[string]string{"rule": "r", "agent": "ana"}, "hook", []map[string]string{source},
			"inhibited by open escalation low-csat.a.ana.1 (low-csat)", "inhibited"},
		{"another agent", inhibitions{r.Config}, map[string]string{"rule": "r", "agent": "bo"}, "hook", []map[string]string{source}, "", ""},
		{"disabled", disabledReceivers{store, r}, map[string]string{"rule": "r"}, "off", nil, "receiver disabled: endpoint gone (410)", "disabled"},
		{"enabled", disabledReceivers{store, r}, map[string]string{"rule": "r"}, "hook", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNotice(escalationChange("r.t.T-1.1", 1, openState, tt.labels), t0)
			n.open = append(tt.open, n.labels) // an escalation never inhibits itself
			routes := r.Config.Root.Match(n.labels)
			n.route = &routing.Route{Receiver: tt.receiver, Quiet: routes[0].Quiet, QuietName: routes[0].QuietName}
			reason, kind, err := tt.muter.mutes(ctx, n)
			if err != nil || !strings.HasPrefix(reason, tt.wantReason) || (tt.wantReason == "") != (reason == "") || kind != tt.kind {
				t.Errorf("mutes = %q, %q, %v; want %q, %q", reason, kind, err, tt.wantReason, tt.kind)
			}
		})
	}
}

// A held-back notice is logged as a suppressed delivery with the first muter's reason and
// goes no further; the others pass.
func TestSuppressStageLogsTheFirstReason(t *testing.T) {
	r := routingOf(t, "hook", `route:
  receiver: hook
silences:
  - matchers: ['rule="noisy"']
    starts: 2020-01-01T00:00:00Z
    ends: 2099-01-01T00:00:00Z
    comment: "first"
  - matchers: ['team="billing"']
    starts: 2020-01-01T00:00:00Z
    ends: 2099-01-01T00:00:00Z
    comment: "second"
`)
	store := deliveries.New(testenv.Redis(t), time.Hour, 100)
	metrics, _ := NewMetrics(nil)
	s := suppressStage{store: store, metrics: metrics, muters: []muter{silences{r.Config}, quietHours{}}}
	ctx := context.Background()
	var ns []*notice
	for _, c := range []*tpv1.EscalationChange{
		escalationChange("noisy.t.T-1.1", 1, openState, map[string]string{"rule": "noisy", "team": "billing"}),
		escalationChange("r.t.T-2.1", 1, openState, map[string]string{"rule": "r", "team": "support"}),
	} {
		routed, err := routeStage{root: r.Config.Root}.exec(ctx, quiet, []*notice{newNotice(c, t0)})
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, routed...)
	}
	out, err := s.exec(ctx, quiet, ns)
	if err != nil || len(out) != 1 || out[0].change.GetEscalation().GetId() != "r.t.T-2.1" {
		t.Fatalf("passed on %d notices, %v; want only r.t.T-2.1", len(out), err)
	}
	list, _, err := store.List(ctx, "acme", deliveries.Filter{}, 10, "")
	if err != nil || len(list) != 1 {
		t.Fatalf("delivery log: %v %v", list, err)
	}
	rec := list[0]
	if rec.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED || !strings.HasSuffix(rec.Reason, ": first") ||
		rec.ID != ns[0].gid+".s.noisy.t.T-1.1#1" || rec.Receiver != "hook" || !slices.Equal(rec.Changes, []string{"noisy.t.T-1.1#1"}) {
		t.Errorf("suppressed delivery %+v", rec)
	}
}

// The first change of a group plans its send group_wait later; more changes, and a change the
// group had before, plan nothing more; after a send, the next send comes group_interval after
// it, or now if that has passed.
func TestGroupStage(t *testing.T) {
	r := routingOf(t, "hook", `route:
  receiver: hook
  group_by: [tenant]
  group_wait: 30s
  group_interval: 5m
`)
	store := deliveries.New(testenv.Redis(t), time.Hour, 100)
	ctx := context.Background()
	add := func(c *tpv1.EscalationChange, now time.Time) []*notice {
		t.Helper()
		routed, err := routeStage{root: r.Config.Root}.exec(ctx, quiet, []*notice{newNotice(c, now)})
		if err != nil {
			t.Fatal(err)
		}
		out, err := groupStage{store: store}.exec(ctx, quiet, routed)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := escalationChange("r.t.T-1.1", 1, openState, map[string]string{"rule": "r"})
	out := add(first, t0)
	if len(out) != 1 || !out[0].wake.Due.Equal(t0.Add(30*time.Second)) || out[0].wake.ID != groupTimer("acme", out[0].gid) {
		t.Fatalf("first change: %+v", out)
	}
	gid := out[0].gid
	if out := add(escalationChange("r.t.T-2.1", 1, openState, map[string]string{"rule": "r"}), t0); len(out) != 0 {
		t.Errorf("a second change planned another send")
	}
	send := func(at time.Time) {
		t.Helper()
		b, err := store.Take(ctx, "acme", gid, at)
		if err != nil || b == nil {
			t.Fatal("take", b, err)
		}
		if _, err := store.Taken(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	send(t0.Add(30 * time.Second))
	if out := add(first, t0.Add(time.Minute)); len(out) != 0 {
		t.Errorf("a change the group had before planned a send")
	}
	if out := add(escalationChange("r.t.T-3.1", 1, openState, map[string]string{"rule": "r"}), t0.Add(time.Minute)); len(out) != 1 ||
		!out[0].wake.Due.Equal(t0.Add(30*time.Second+5*time.Minute)) {
		t.Errorf("after a send: %+v, want the send group_interval after it", out)
	}
	send(t0.Add(time.Hour))
	late := t0.Add(2 * time.Hour)
	if out := add(escalationChange("r.t.T-4.1", 1, openState, map[string]string{"rule": "r"}), late); len(out) != 1 || !out[0].wake.Due.Equal(late) {
		t.Errorf("long after a send: %+v, want now", out)
	}
}

// The open escalations are recorded with every change, but read once per tenant and batch,
// and only when an inhibition rule could use them.
func TestOpenStage(t *testing.T) {
	store := deliveries.New(testenv.Redis(t), time.Hour, 100)
	ctx := context.Background()
	a := newNotice(escalationChange("a.t.T-1.1", 1, openState, nil), t0)
	b := newNotice(escalationChange("b.t.T-2.1", 1, openState, nil), t0)
	s := newOpenStage(store, true)
	for _, n := range []*notice{a, b} {
		if _, err := s.exec(ctx, quiet, []*notice{n}); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.open) != 1 || a.open[0]["escalation_id"] != "a.t.T-1.1" || len(b.open) != 1 {
		t.Errorf("open escalations seen: %v, then %v; want a's batch-start view twice", a.open, b.open)
	}
	resolved := newNotice(escalationChange("a.t.T-1.1", 2, tpv1.EscalationState_ESCALATION_STATE_RESOLVED, nil), t0)
	if _, err := newOpenStage(store, false).exec(ctx, quiet, []*notice{resolved}); err != nil || resolved.open != nil {
		t.Fatalf("without inhibition rules: %v, open %v", err, resolved.open)
	}
	open, err := store.OpenLabels(ctx, "acme")
	if err != nil || len(open) != 1 || open[0]["escalation_id"] != "b.t.T-2.1" {
		t.Errorf("open escalations stored: %v %v; want b only", open, err)
	}
}
