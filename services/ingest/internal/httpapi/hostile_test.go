package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// hostileSize is the largest body the events route takes by default.
const hostileSize = 4 << 20

// hostile is a body built to be expensive to reject, with what its answer must say.
type hostile struct {
	name     string
	body     []byte
	status   int
	problems int // listed and counted, for a 400
}

// required are the problems of an object that has none of the required fields.
const required = 5

// fill appends item(i) for i = 0, 1, ... (separated by commas) while the body stays within
// room bytes, at most limit of them, and returns how many it appended.
func fill(buf *bytes.Buffer, room, limit int, item func(i int) string) int {
	n := 0
	for ; n < limit; n++ {
		s := item(n)
		if buf.Len()+len(s)+1 > room {
			return n
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(s)
	}
	return n
}

func hostileBodies() []hostile {
	var out []hostile
	var buf bytes.Buffer

	// One object of distinct unknown keys: every key is a problem, and each must be checked
	// against the others for duplicates.
	buf.WriteByte('{')
	n := fill(&buf, hostileSize-1, hostileSize, func(i int) string { return `"k` + strconv.Itoa(i) + `":0` })
	buf.WriteByte('}')
	out = append(out, hostile{name: "distinct keys", body: bytes.Clone(buf.Bytes()), status: http.StatusBadRequest, problems: n + required})

	// As many events as a request may hold, each a deeply nested array.
	buf.Reset()
	buf.WriteByte('[')
	depth := (hostileSize/1000 - 2) / 2
	nested := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	n = fill(&buf, hostileSize-1, 1000, func(int) string { return nested })
	buf.WriteByte(']')
	out = append(out, hostile{name: "nested arrays", body: bytes.Clone(buf.Bytes()), status: http.StatusBadRequest, problems: n})

	// An event whose tags are a huge array of tiny objects.
	buf.Reset()
	buf.WriteString(`{"tags":[`)
	n = fill(&buf, hostileSize-2, hostileSize, func(int) string { return `{}` })
	buf.WriteString(`]}`)
	out = append(out, hostile{name: "tiny objects", body: bytes.Clone(buf.Bytes()), status: http.StatusBadRequest, problems: 1 + n + required})

	// A huge id of escapes, then tags that are short strings of escapes.
	buf.Reset()
	buf.WriteString(`{"id":"` + strings.Repeat(`\u00e9`, (1<<20)/6) + `","tags":[`)
	tag := `"` + strings.Repeat(`\u0000`, 20) + `"`
	n = fill(&buf, hostileSize-2, hostileSize, func(int) string { return tag })
	buf.WriteString(`]}`)
	// The id is too long, there are too many tags, each has a control character, and the other
	// required fields are missing.
	out = append(out, hostile{name: "escapes", body: bytes.Clone(buf.Bytes()), status: http.StatusBadRequest, problems: 1 + 1 + n + required - 1})

	// More events than a request may hold: refused before any is read.
	buf.Reset()
	buf.WriteByte('[')
	fill(&buf, hostileSize-1, hostileSize, func(int) string { return `{}` })
	buf.WriteByte(']')
	out = append(out, hostile{name: "too many events", body: bytes.Clone(buf.Bytes()), status: http.StatusRequestEntityTooLarge})
	return out
}

// newHostileHandler is the events route as the service configures it by default. It has no
// publisher: every hostile body is refused before anything is published.
func newHostileHandler(t testing.TB) (*Handler, string) {
	t.Helper()
	authz, ts := testAuth(t)
	h, err := New(Config{Auth: authz, MaxEvents: 1000, MaxBodyBytes: hostileSize, PublishTimeout: 5 * time.Second, MaxFutureSkew: 5 * time.Minute},
		nil, slog.New(slog.NewTextHandler(io.Discard, nil)), tracenoop.NewTracerProvider().Tracer(""), metricnoop.NewMeterProvider().Meter(""))
	if err != nil {
		t.Fatal(err)
	}
	return h, ts.AcmeEvents
}

func postEvents(h http.Handler, key string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/tenants/acme/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.SetPathValue("tenant", "acme")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestHostileBodies checks that a body built to be costly is answered with the first
// canonical.MaxProblems problems and the count of the rest, in an answer far smaller than it.
func TestHostileBodies(t *testing.T) {
	h, key := newHostileHandler(t)
	for _, tt := range hostileBodies() {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.body) > hostileSize {
				t.Fatalf("body of %d bytes", len(tt.body))
			}
			rec := postEvents(h, key, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %.300s", rec.Code, tt.status, rec.Body)
			}
			if rec.Body.Len() > 16<<10 {
				t.Errorf("answer of %d bytes", rec.Body.Len())
			}
			if tt.status != http.StatusBadRequest {
				return
			}
			var got Rejected
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Problems) != canonical.MaxProblems || got.MoreProblems != tt.problems-canonical.MaxProblems {
				t.Errorf("%d problems and %d more, want %d and %d", len(got.Problems), got.MoreProblems,
					canonical.MaxProblems, tt.problems-canonical.MaxProblems)
			}
		})
	}
}

// BenchmarkHostileBody measures the answer to each hostile body through the events route. Next
// to the wall time it reports the process's CPU time per answer (cpu-ns/op, garbage
// collection included), which a machine shared with other work inflates less.
func BenchmarkHostileBody(b *testing.B) {
	h, key := newHostileHandler(b)
	for _, tt := range hostileBodies() {
		b.Run(strings.ReplaceAll(tt.name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(tt.body)))
			b.ReportAllocs()
			start := cpuTime(b)
			for b.Loop() {
				if rec := postEvents(h, key, tt.body); rec.Code != tt.status {
					b.Fatalf("status %d", rec.Code)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
