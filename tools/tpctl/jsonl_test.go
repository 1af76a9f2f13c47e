package main

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name, give, wantID, wantErr string
		blank                       bool
	}{
		{name: "event", give: `{"id": "evt-1", "ticket_id": "T-1", "type": "ticket_created"}`, wantID: "evt-1"},
		{name: "odd id", give: `{"id": "<script>alert(1)</script> \"q\" / ü", "ticket_id": "T 1"}` + "\r", wantID: `<script>alert(1)</script> "q" / ü`},
		{name: "blank", give: " \t\r", blank: true},
		{name: "no id", give: `{"ticket_id": "T-1"}`, wantErr: `no "id"`},
		{name: "empty id", give: `{"id": ""}`, wantErr: `no "id"`},
		{name: "null id", give: `{"id": null}`, wantErr: `no "id"`},
		{name: "number id", give: `{"id": 7}`, wantErr: `"id": must be a JSON string`},
		{name: "array", give: `[{"id": "a"}]`, wantErr: "not a JSON object"},
		{name: "broken", give: `{"id": "a",`, wantErr: "malformed JSON"},
		{name: "two values", give: `{"id": "a"} {"id": "b"}`, wantErr: "more than one JSON value"},
		{name: "too long", give: `{"id": "a", "x": "` + strings.Repeat("x", maxLine) + `"}`, wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, blank, err := parseLine([]byte(tt.give))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || id != tt.wantID || blank != tt.blank {
				t.Fatalf("got %q blank=%v err=%v, want %q blank=%v", id, blank, err, tt.wantID, tt.blank)
			}
		})
	}
}

// The reader counts lines and bytes exactly, including a last line without a newline, and
// skips the rest of an over-long line without holding it.
func TestLineReader(t *testing.T) {
	long := strings.Repeat("y", maxLine+10)
	in := "a\n\nbc\r\n" + long + "\nlast"
	l := newLineReader(strings.NewReader(in), 0, 0)
	var got []string
	var long1 bool
	for {
		line, _, tooLong, err := l.next(nil)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if tooLong {
			long1 = true
			got = append(got, "<long>")
			continue
		}
		got = append(got, string(line))
	}
	if strings.Join(got, "|") != "a||bc\r|<long>|last" || !long1 {
		t.Errorf("lines %q", got)
	}
	if l.offset != int64(len(in)) || l.number != 5 {
		t.Errorf("offset %d lines %d, want %d 5", l.offset, l.number, len(in))
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		`{"id": "evt-1042", "ticket_id": "T-77", "type": "agent_message", "occurred_at": "2026-03-02T09:14:05Z", "actor": {"id": "ana", "kind": "agent"}, "public": true}`,
		`{"id": "\u00fc\n<script>", "ticket_id": "a/b c"}`,
		`{"ticket_id": "T"}`, `{"id": 1}`, `[]`, `{`, ``, `   `, `{"id":"a"}{"id":"b"}`, `{"id": "a", "id": "b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, blank, err := parseLine(b)
		if err == nil && !blank && id == "" {
			t.Fatalf("accepted %q without an id", b)
		}
		if blank && (err != nil || id != "") {
			t.Fatalf("blank line %q with id %q err %v", b, id, err)
		}
		// Whatever the line, the reader splits it back into the same bytes.
		l := newLineReader(strings.NewReader(string(b)), 0, 0)
		n := int64(0)
		for {
			_, raw, _, err := l.next(nil)
			if err != nil {
				break
			}
			n += int64(raw)
		}
		if n != int64(len(b)) || l.offset != n {
			t.Fatalf("reader consumed %d of %d bytes", n, len(b))
		}
	})
}

func TestRetryAfter(t *testing.T) {
	def := 700 * time.Millisecond
	tests := []struct {
		give string
		want time.Duration
	}{
		{"", def},
		{"2", 2 * time.Second},
		{" 3 ", 3 * time.Second},
		{"0", 100 * time.Millisecond},
		{"86400", 5 * time.Minute},
		{"-1", def},
		{"soon", def},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.give, def); got != tt.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

// Whatever a server sends as Retry-After, the wait stays between 100ms and five minutes.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "Wed, 21 Oct 2026 07:28:00 GMT", "", "-5", "1e9", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := retryAfter(s, time.Second); d < 100*time.Millisecond || d > 5*time.Minute {
			t.Fatalf("retryAfter(%q) = %s", s, d)
		}
	})
}

// BenchmarkReadAndParse is tpctl's own cost per line of a replay file (reading and checking
// it), to compare with ingest's rate: it must never be what limits a replay.
func BenchmarkReadAndParse(b *testing.B) {
	line := `{"id": "evt-1042", "ticket_id": "T-77", "type": "agent_message", "occurred_at": "2026-03-02T09:14:05Z", "actor": {"id": "ana", "kind": "agent"}, "assignee_id": "ana", "team_id": "billing", "priority": "high", "public": true}` + "\n"
	in := strings.Repeat(line, 10000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	buf := make([]byte, 0, 64<<10)
	for b.Loop() {
		l := newLineReader(strings.NewReader(in), 0, 0)
		for {
			got, _, _, err := l.next(buf)
			if err != nil {
				break
			}
			if _, _, err := parseLine(got); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "lines/s")
}
