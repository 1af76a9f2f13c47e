package chaos

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Receiver is the supervisors' webhook endpoint notify delivers to. It checks every signature
// (Standard Webhooks), fails a share of attempts with 503 so retries happen, and logs which
// message (webhook-id) carried each escalation change.
type Receiver struct {
	URL string

	key  []byte
	srv  *http.Server
	mu   sync.Mutex
	rnd  *rand.Rand
	fail int // percent of attempts answered 503
	// carried maps "<escalation id>#<sequence>" to the distinct webhook-ids that carried it.
	carried map[string]map[string]bool
	changes map[string]*tpv1.EscalationChange
	// Attempts counts requests; Repeats those whose webhook-id was accepted before (a retry of
	// a message whose answer was lost, which a receiver drops by its id).
	Attempts, Repeats, Failed int
	Bad                       []string
}

// StartReceiver listens on a loopback port; secret is the whsec_ secret notify signs with.
func StartReceiver(secret string, failPercent int, seed uint64) (*Receiver, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{URL: "http://" + ln.Addr().String() + "/hook", key: key, rnd: rand.New(rand.NewPCG(seed, 7)),
		fail: failPercent, carried: map[string]map[string]bool{}, changes: map[string]*tpv1.EscalationChange{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	go r.srv.Serve(ln)
	return r, nil
}

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Attempts++
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	if err != nil || !r.signed(id, ts, body, req.Header.Get("webhook-signature")) {
		r.Bad = append(r.Bad, fmt.Sprintf("webhook-id %q: bad signature or body (%v)", id, err))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.rnd.IntN(100) < r.fail {
		r.Failed++
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	var msg struct {
		Changes []json.RawMessage `json:"changes"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		r.Bad = append(r.Bad, fmt.Sprintf("webhook-id %q: %v", id, err))
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	repeat := false
	for _, raw := range msg.Changes {
		var c tpv1.EscalationChange
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &c); err != nil {
			r.Bad = append(r.Bad, fmt.Sprintf("webhook-id %q: change: %v", id, err))
			continue
		}
		k := changeKey(c.GetEscalation().GetId(), c.GetSequence())
		if r.carried[k] == nil {
			r.carried[k] = map[string]bool{}
		}
		repeat = repeat || r.carried[k][id]
		r.carried[k][id] = true
		r.changes[k] = &c
	}
	if repeat {
		r.Repeats++
	}
	w.WriteHeader(http.StatusNoContent)
}

func changeKey(escalation string, seq int64) string { return fmt.Sprintf("%s#%d", escalation, seq) }

// signed checks a Standard Webhooks signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">,
// any of several space-separated ones.
func (r *Receiver) signed(id, ts string, body []byte, header string) bool {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Fields(header) {
		if v, ok := strings.CutPrefix(s, "v1,"); ok && hmac.Equal([]byte(v), []byte(want)) {
			return true
		}
	}
	return false
}

// Carried is, for each change received, the webhook-ids of the distinct messages that carried
// it; and the changes themselves.
func (r *Receiver) Carried() (map[string][]string, map[string]*tpv1.EscalationChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]string, len(r.carried))
	for k, ids := range r.carried {
		for id := range ids {
			out[k] = append(out[k], id)
		}
	}
	ch := make(map[string]*tpv1.EscalationChange, len(r.changes))
	for k, c := range r.changes {
		ch[k] = c
	}
	return out, ch
}
