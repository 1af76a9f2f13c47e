package grpcapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
)

// maxTokenLen bounds what a client can make the server decode.
const maxTokenLen = 1024

// pageToken is where the next page starts. It pins the window resolved for the first page, so
// the pages of a rolling window all describe the same hours, and carries a fingerprint of the
// request so it cannot be replayed against other parameters. Figures credited between two pages
// can still move an agent across the page boundary, as with any offset: the pages are a
// consistent window, not a snapshot. The token is not a secret: a client may forge one, which
// only gets it figures it could ask for directly.
type pageToken struct {
	Version     int    `json:"v"`
	Offset      int    `json:"o"`
	FromHour    int64  `json:"f"`
	ToHour      int64  `json:"t"`
	Aligned     bool   `json:"a,omitempty"`
	Note        string `json:"n,omitempty"`
	Fingerprint string `json:"p"`
}

const tokenVersion = 1

// fingerprint identifies the parameters a listing's pages must share.
func fingerprint(tenant, team string, o order, w *ticketpulsev1.Window) string {
	h := sha256.New()
	wb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(w) // a message always marshals
	for _, part := range [][]byte{[]byte(tenant), []byte(team), []byte(o.String()), wb} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

func encodeToken(t pageToken) string {
	t.Version = tokenVersion
	b, _ := json.Marshal(t) // plain fields always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

var errForeignToken = errors.New("was issued for a listing with other parameters (tenant, team_id, window or order_by)")

// decodeToken checks a token against the request's fingerprint.
func decodeToken(s, wantFingerprint string) (pageToken, error) {
	var t pageToken
	if len(s) > maxTokenLen {
		return t, fmt.Errorf("longer than %d bytes: not a token this service issued", maxTokenLen)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, errors.New("malformed: not a token this service issued")
	}
	if err := json.Unmarshal(b, &t); err != nil || t.Version != tokenVersion {
		return t, errors.New("malformed: not a token this service issued")
	}
	if t.Fingerprint != wantFingerprint {
		return t, errForeignToken
	}
	if t.Offset < 0 || t.FromHour >= t.ToHour || t.ToHour-t.FromHour > window.MaxHours ||
		t.FromHour < window.MinHour || t.ToHour > window.MaxHour {
		return t, errors.New("malformed: bad offset or window")
	}
	return t, nil
}
