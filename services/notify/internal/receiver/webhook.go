package receiver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
)

// WebhookEventType is the "type" of a signed webhook's body.
const WebhookEventType = "ticketpulse.notification"

// Standard Webhooks headers (https://www.standardwebhooks.com/).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// WebhookBody is the JSON body of a signed webhook. Changes are the escalation changes in the
// protobuf JSON mapping with the proto field names (e.g. "subject_id", enums by name, int64 as
// strings, timestamps in RFC 3339).
type WebhookBody struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	Timestamp   time.Time         `json:"timestamp"` // when the notification was composed
	Receiver    string            `json:"receiver"`
	GroupKey    string            `json:"group_key"`
	GroupLabels map[string]string `json:"group_labels"`
	Changes     []json.RawMessage `json:"changes"`
}

// webhookSender posts a signed JSON body.
type webhookSender struct {
	httpSender
	keys [][]byte
}

// parseSecrets decodes "whsec_<base64>" secrets (the prefix is optional).
func parseSecrets(secrets []string) ([][]byte, error) {
	if len(secrets) == 0 {
		return nil, errors.New("webhook: at least one secret is required")
	}
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "whsec_"))
		if err != nil || len(key) == 0 {
			// The secret itself is not quoted.
			return nil, fmt.Errorf("webhook: secret %d is not whsec_<base64>", i+1)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// webhookBody encodes the notification.
func webhookBody(n *Notification) ([]byte, error) {
	b := WebhookBody{
		Type:        WebhookEventType,
		ID:          n.ID,
		Timestamp:   n.At.UTC(),
		Receiver:    n.Receiver,
		GroupKey:    n.GroupKey,
		GroupLabels: n.GroupLabels,
		Changes:     make([]json.RawMessage, 0, len(n.Changes)),
	}
	if b.GroupLabels == nil {
		b.GroupLabels = map[string]string{}
	}
	opts := protojson.MarshalOptions{UseProtoNames: true}
	for _, c := range n.Changes {
		j, err := opts.Marshal(c)
		if err != nil {
			return nil, err
		}
		b.Changes = append(b.Changes, j)
	}
	return json.Marshal(b) // also compacts protojson's deliberately unstable spacing
}

// sign returns the webhook-signature header value: "v1,<base64 HMAC-SHA256>" of
// "<id>.<timestamp>.<body>" for each key, space-separated.
func sign(keys [][]byte, id string, ts int64, body []byte) string {
	sigs := make([]string, 0, len(keys))
	for _, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(strconv.FormatInt(ts, 10)))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}

func (s *webhookSender) Send(ctx context.Context, n *Notification) Result {
	return timed(func() Result {
		if err := checkNotification(n); err != nil {
			return Result{Err: s.errorf("%v", err)}
		}
		if n.ID == "" {
			return Result{Err: s.errorf("notification has no ID (the webhook-id)")}
		}
		body, err := webhookBody(n)
		if err != nil {
			return Result{Err: s.errorf("encoding body: %v", err)}
		}
		// The id is the notification's, the same on every retry, so the receiver can drop
		// duplicates; the timestamp is this attempt's, so a retry is not refused as a replay.
		ts := s.now().Unix()
		h := http.Header{}
		h[HeaderWebhookID] = []string{n.ID}
		h[HeaderWebhookTimestamp] = []string{strconv.FormatInt(ts, 10)}
		h[HeaderWebhookSignature] = []string{sign(s.keys, n.ID, ts, body)}
		return s.post(ctx, body, h)
	})
}
