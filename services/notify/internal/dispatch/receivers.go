package dispatch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"golang.org/x/time/rate"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/routing"
)

// Routing is a loaded routing file with a sender per receiver.
type Routing struct {
	Config  *routing.Config
	senders map[string]*sendState
}

// sendState is one receiver's sender and limits on this replica.
type sendState struct {
	cfg         *receiver.Config
	sender      receiver.Sender
	fingerprint string
	limiter     *rate.Limiter
	slots       chan struct{}
}

// NewRouting builds the senders of a routing file; a receiver that cannot be built is an error.
func NewRouting(cfg *routing.Config, opts receiver.Options) (*Routing, error) {
	r := &Routing{Config: cfg, senders: map[string]*sendState{}}
	for name, rc := range cfg.Receivers {
		s, err := receiver.New(*rc, opts)
		if err != nil {
			return nil, fmt.Errorf("receiver %s: %w", name, err)
		}
		l := rc.Limits
		r.senders[name] = &sendState{
			cfg: rc, sender: s, fingerprint: fingerprint(rc),
			limiter: rate.NewLimiter(rate.Limit(l.RatePerSecond), max(l.Burst, 1)),
			slots:   make(chan struct{}, max(l.Concurrency, 1)),
		}
	}
	return r, nil
}

// fingerprint identifies where a receiver sends to: a receiver disabled by a 410 comes back
// when this changes (a new URL or address).
func fingerprint(rc *receiver.Config) string {
	data, _ := json.Marshal(struct {
		S, T *receiver.ChatConfig
		W    *receiver.WebhookConfig
		E    *receiver.EmailConfig
	}{rc.Slack, rc.Teams, rc.Webhook, rc.Email})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
