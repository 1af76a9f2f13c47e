package session

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func codec(t testing.TB, secure bool, now time.Time) *Codec {
	t.Helper()
	c, err := NewCodec(bytes.Repeat([]byte{7}, KeyBytes), secure, 12*time.Hour, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip writes s with c and reads it back as the browser would send it.
func roundTrip(t *testing.T, write, read *Codec, s *Session) (*Session, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := write.Write(rec, s); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, ck := range rec.Result().Cookies() {
		req.AddCookie(ck)
	}
	return read.Read(req)
}

func TestSession(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := New("acme", "api-key", `ana "<x>"`, []string{"kpis:read"}, "tp_secret", now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := codec(t, false, now)
	got, err := roundTrip(t, c, c, s)
	if err != nil || got.Tenant != "acme" || got.Credential != "tp_secret" || got.CSRF != s.CSRF || !got.Has("kpis:read") || got.Has("operator") {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := roundTrip(t, c, codec(t, false, now.Add(time.Hour)), s); err != ErrExpired {
		t.Errorf("at expiry: %v, want ErrExpired", err)
	}
	// The maximum age counts from the sign-in, whatever the cookie's expiry: a session sealed to
	// last a day (before the maximum was lowered to 12 h) ends 12 h after it began.
	long, err := New("acme", "oidc", "ana", nil, "id.token.x", now, now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, c, codec(t, false, now.Add(12*time.Hour-time.Second)), long); err != nil {
		t.Errorf("a second before the maximum age: %v, want the session", err)
	}
	if _, err := roundTrip(t, c, codec(t, false, now.Add(12*time.Hour)), long); err != ErrExpired {
		t.Errorf("at the maximum age: %v, want ErrExpired", err)
	}
	other, _ := NewCodec(bytes.Repeat([]byte{8}, KeyBytes), false, 12*time.Hour, func() time.Time { return now })
	if _, err := roundTrip(t, c, other, s); err != ErrInvalid {
		t.Errorf("another key: %v, want ErrInvalid", err)
	}
	if _, err := codec(t, false, now).Read(httptest.NewRequest(http.MethodGet, "/", nil)); err != ErrNone {
		t.Errorf("no cookie: %v, want ErrNone", err)
	}

	rec := httptest.NewRecorder()
	if err := c.Write(rec, s); err != nil {
		t.Fatal(err)
	}
	ck := rec.Result().Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure || ck.Path != "/" || strings.Contains(ck.Value, "tp_secret") {
		t.Errorf("cookie %+v", ck)
	}
	// Any change to the sealed value is noticed.
	for i := range len(ck.Value) {
		b := []byte(ck.Value)
		b[i] ^= 1
		if d, err := base64.RawURLEncoding.DecodeString(string(b)); err == nil {
			if orig, _ := base64.RawURLEncoding.DecodeString(ck.Value); bytes.Equal(d, orig) {
				continue // the last character's unused bits: the same sealed bytes
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: string(b)})
		if got, err := c.Read(req); err == nil {
			t.Fatalf("flipped byte %d: read %+v", i, got)
		}
	}
	srec := httptest.NewRecorder()
	if err := codec(t, true, now).Write(srec, s); err != nil {
		t.Fatal(err)
	}
	if sc := srec.Result().Cookies()[0]; !sc.Secure || sc.Name != "__Host-tp_session" {
		t.Errorf("secure cookie %+v", sc)
	}
}

// A value sealed for the sign-in step cannot be replayed as a session.
func TestPurposeBinding(t *testing.T) {
	now := time.Now()
	c := codec(t, false, now)
	rec := httptest.NewRecorder()
	if err := c.WriteTemp(rec, "oidc", Session{Tenant: "acme", Expires: now.Add(time.Hour).Unix()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: "tp_session", Value: rec.Result().Cookies()[0].Value})
	if _, err := c.Read(req); err != ErrInvalid {
		t.Errorf("temp value read as a session: %v, want ErrInvalid", err)
	}
}

func TestNewCodecKey(t *testing.T) {
	if _, err := NewCodec(make([]byte, 16), false, 0, nil); err == nil {
		t.Error("a 16-byte key was taken")
	}
}

func FuzzOpen(f *testing.F) {
	c := codec(f, false, time.Now())
	sealed, err := c.seal("session", Session{Tenant: "acme"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add("")
	f.Add("%%%")
	f.Add(strings.Repeat("A", MaxCookieBytes+1))
	f.Fuzz(func(t *testing.T, v string) {
		var s Session
		if err := c.open("session", v, &s); err == nil {
			// Only the sealed bytes open (base64 may spell them in more than one way).
			got, _ := base64.RawURLEncoding.DecodeString(v)
			want, _ := base64.RawURLEncoding.DecodeString(sealed)
			if !bytes.Equal(got, want) {
				t.Fatalf("forged value %q opened", v)
			}
		}
	})
}
