package app

import (
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
)

// The exports are served on kpi's HTTP port behind the credential check, from the figures the
// pipeline wrote; the tickets export from the drill-down index this kpi keeps (-ticket-index).
func TestExportsOnHTTPPort(t *testing.T) {
	s := newStack(t)
	ts := servicetest.WriteTenants(t, nil)
	r := runKPI(t, s, ts, nil)
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	publishTicket(t, ticketsJS(t, s), "T-1", start)
	agents := "http://" + r.HTTP + "/v1/tenants/acme/exports/agents.csv?from=2026-03-01&to=2026-03-04&time_zone=Europe/Berlin"
	if code, body := fetch(t, agents, ""); code != http.StatusUnauthorized {
		t.Errorf("without credential: %d %s", code, body)
	}
	if code, body := fetch(t, agents, ts.Globex); code != http.StatusForbidden {
		t.Errorf("with globex's key: %d %s", code, body)
	}
	recs := waitExport(t, agents, ts.Acme, 4)
	// ana's three days in Berlin; the ticket was assigned on March 2.
	if got := strings.Join(recs[2][:6], ","); got != "acme,agent,ana,2026-03-02T00:00:00+01:00,2026-03-03T00:00:00+01:00,Europe/Berlin" {
		t.Errorf("row %q", got)
	}
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	if recs[2][col["assigned"]] != "1" || recs[2][col["resolutions"]] != "1" || recs[1][col["assigned"]] != "0" {
		t.Errorf("rows %q", recs)
	}

	tickets := "http://" + r.HTTP + "/v1/tenants/acme/exports/tickets.csv?from=2026-03-01&to=2026-03-04&time_zone=Europe/Berlin&max_rating=5"
	recs = waitExport(t, tickets, ts.Acme, 2)
	// The row docs/exports.md shows.
	if got := strings.Join(recs[1], ","); got != "acme,T-1,ana,billing,solved,high,2026-03-02T10:00:00+01:00,600,2026-03-02T10:10:00+01:00,"+
		"7200,2026-03-02T12:00:00+01:00,0,5,false,false,false,2026-03-02T12:10:00+01:00" {
		t.Errorf("ticket row %q", got)
	}
}

// waitExport polls the CSV export at url until it has rows records (header included), or fails
// after 15 s.
func waitExport(t *testing.T, url, key string, rows int) [][]string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := fetch(t, url, key)
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if code == http.StatusOK && err == nil && len(recs) == rows {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("export never showed ana's ticket: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fetch GETs url with key as the bearer credential (none when empty).
func fetch(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
