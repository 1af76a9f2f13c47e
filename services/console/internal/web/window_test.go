package web

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantErr  string
		wantFrom time.Time
		wantTo   time.Time
		wantRoll string
	}{
		{name: "default", give: "", wantRoll: "24h"},
		{name: "7d in a zone", give: "window=7d&tz=Europe/Berlin", wantRoll: "7d"},
		{name: "range, last day included", give: "window=range&from=2026-03-01&to=2026-03-01",
			wantFrom: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), wantTo: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{name: "range in a :30 zone", give: "window=range&from=2026-03-01&to=2026-03-02&tz=Asia/Kolkata",
			wantFrom: time.Date(2026, 2, 28, 18, 30, 0, 0, time.UTC), wantTo: time.Date(2026, 3, 2, 18, 30, 0, 0, time.UTC)},
		{name: "ten years", give: "window=range&from=2016-03-01&to=2026-02-28",
			wantFrom: time.Date(2016, 3, 1, 0, 0, 0, 0, time.UTC), wantTo: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{name: "unknown window", give: "window=2d", wantErr: "window:"},
		{name: "unknown zone", give: "tz=Mars/Olympus", wantErr: "tz:"},
		{name: "Local is not a zone name", give: "tz=Local", wantErr: "tz:"},
		{name: "bad from", give: "window=range&from=01.03.2026&to=2026-03-01", wantErr: "from:"},
		{name: "to before from", give: "window=range&from=2026-03-02&to=2026-03-01", wantErr: "to:"},
		{name: "eleven years", give: "window=range&from=2015-01-01&to=2026-03-01", wantErr: "to:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.give)
			w, _, err := parseWindow(q)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantRoll != "" {
				if w.GetRolling() != tt.wantRoll {
					t.Errorf("rolling %q, want %q", w.GetRolling(), tt.wantRoll)
				}
				return
			}
			if f, to := w.GetRange().GetFrom().AsTime(), w.GetRange().GetTo().AsTime(); !f.Equal(tt.wantFrom) || !to.Equal(tt.wantTo) {
				t.Errorf("range %s..%s, want %s..%s", f, to, tt.wantFrom, tt.wantTo)
			}
		})
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"", "window=7d&tz=Europe/Berlin", "window=range&from=2026-03-01&to=2026-03-02&tz=Asia/Kathmandu",
		"window=range&from=0001-01-01&to=9999-12-31", "tz=../../etc/passwd", "window=range&from=2026-02-30&to=2026-03-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		w, _, err := parseWindow(q)
		if err != nil {
			return
		}
		if r := w.GetRange(); r != nil {
			from, to := r.GetFrom().AsTime(), r.GetTo().AsTime()
			if !to.After(from) || to.Sub(from) > maxRangeDays*24*time.Hour {
				t.Fatalf("accepted range %s..%s", from, to)
			}
		} else if g := w.GetRolling(); g != "24h" && g != "7d" && g != "30d" {
			t.Fatalf("accepted rolling %q", g)
		}
	})
}

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{duration(0, 0), "–"},
		{duration(45, 1), "45s"},
		{duration(600, 1), "10m 00s"},
		{duration(3725, 1), "1h 02m"},
		{duration(3*86400+7200, 1), "3d 2h"},
		{percent(0.5, 0), "–"},
		{percent(0.987, 10), "98.7 %"},
		{decimal(4.5, 2), "4.50"},
		{score(87.456, 3), "87.5 %"},
		{score(100, 1), "100.0 %"},
		{score(0, 0), "–"},
		{link("/t/acme/agent", "id", `a/b "c" <d> ü`, "tz", ""), "/t/acme/agent?id=a%2Fb+%22c%22+%3Cd%3E+%C3%BC"},
		{enumWord("ESCALATION_STATE_OPEN", "ESCALATION_STATE_"), "open"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
