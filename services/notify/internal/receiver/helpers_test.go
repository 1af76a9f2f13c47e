package receiver

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var t0 = time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)

// change is the i-th sample change: ticket T-(77+i) breaching its first-response SLA.
func change(i int, kind tpv1.ChangeKind, sev tpv1.Severity) *tpv1.EscalationChange {
	return &tpv1.EscalationChange{
		Kind:     kind,
		Sequence: int64(i + 1),
		At:       timestamppb.New(t0.Add(time.Duration(i) * time.Second)),
		Escalation: &tpv1.Escalation{
			Id:          fmt.Sprintf("esc-%d", i+1),
			Tenant:      "acme",
			Rule:        "sla-first-response",
			SubjectKind: "ticket",
			SubjectId:   fmt.Sprintf("T-%d", 77+i),
			State:       tpv1.EscalationState_ESCALATION_STATE_OPEN,
			Severity:    sev,
			Level:       1,
			Labels: map[string]string{
				"tenant": "acme", "rule": "sla-first-response", "severity": "critical", "level": "1",
				"targets": "team-lead", "ticket": fmt.Sprintf("T-%d", 77+i), "team": "billing",
				"priority": "high", "policy": "default",
			},
			Summary: "First reply overdue on “Refund not received”",
			Facts: []*tpv1.Fact{
				{Name: "target", Value: "3600s"},
				{Name: "elapsed", Value: "3900s"},
			},
			TriggeredAt: timestamppb.New(t0),
		},
	}
}

// notification has n changes of the sample: TRIGGERED, critical.
func notification(n int) *Notification {
	nt := &Notification{
		ID:          "ntf-0001",
		Receiver:    "ops",
		GroupKey:    "acme/billing",
		GroupLabels: map[string]string{"tenant": "acme", "team": "billing"},
		At:          t0,
	}
	for i := range n {
		nt.Changes = append(nt.Changes, change(i, tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, tpv1.Severity_SEVERITY_CRITICAL))
	}
	return nt
}

// request is what a test receiver got.
type request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// recorder is a real HTTP receiver on loopback: it records every request and answers with
// respond (200 "ok" when nil).
type recorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []request
	calls   atomic.Int32
	respond func(w http.ResponseWriter, r *http.Request, call int)
}

func newRecorder(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, call int)) *recorder {
	t.Helper()
	rec := &recorder{respond: respond}
	rec.srv = httptest.NewServer(http.HandlerFunc(rec.serve))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	rec.mu.Unlock()
	call := int(rec.calls.Add(1))
	if rec.respond == nil {
		_, _ = io.WriteString(w, "ok")
		return
	}
	rec.respond(w, r, call)
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.reqs...)
}

func (rec *recorder) url(path string) string { return rec.srv.URL + path }

// clock is a fake Now that moves a second on each call.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// nxResolver is a resolver whose DNS server is a loopback UDP responder answering every
// query NXDOMAIN, so DNS failures are tested without leaving the machine. queries counts what
// it answered.
func nxResolver(t *testing.T) (*net.Resolver, *atomic.Int32) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var queries atomic.Int32
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			queries.Add(1)
			resp := append([]byte(nil), buf[:n]...)
			flags := binary.BigEndian.Uint16(resp[2:4])
			flags |= 1 << 15 // QR: a response
			flags |= 1 << 7  // RA
			flags = flags&^0xF | 3
			binary.BigEndian.PutUint16(resp[2:4], flags)
			// Keep the question; no answers, authority or additional records.
			binary.BigEndian.PutUint16(resp[6:8], 0)
			binary.BigEndian.PutUint16(resp[8:10], 0)
			binary.BigEndian.PutUint16(resp[10:12], 0)
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	addr := pc.LocalAddr().String()
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
	return r, &queries
}
