// Package receiver delivers notifications: Slack-compatible and Microsoft Teams chat webhooks,
// signed webhooks (Standard Webhooks) and e-mail over SMTP, each message rendered from Go
// templates. A Sender makes one attempt; retries, rate limits and the delivery log are the
// caller's.
package receiver

import (
	"context"
	"fmt"
	htmltemplate "html/template"
	"text/template"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Kinds of receiver.
const (
	KindSlack   = "slack"
	KindTeams   = "teams"
	KindWebhook = "webhook"
	KindEmail   = "email"
)

// Config is one receiver as the routing file defines it, secrets resolved.
type Config struct {
	Name string
	Kind string
	// Exactly one of these is set, by Kind.
	Slack   *ChatConfig
	Teams   *ChatConfig
	Webhook *WebhookConfig
	Email   *EmailConfig
	Limits  Limits
	// Templates override the default message texts; empty fields keep the defaults.
	Templates Templates
}

// ChatConfig is an incoming-webhook URL (a secret: whoever has it can post).
type ChatConfig struct {
	URL string
}

// WebhookConfig is a signed webhook.
type WebhookConfig struct {
	URL string
	// Secrets sign each request (Standard Webhooks "whsec_<base64>"); all of them sign, so a
	// receiver can rotate.
	Secrets []string
}

// TLS modes of an SMTP connection.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which must be offered
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // no TLS: only for a relay on loopback
)

// EmailConfig is an SMTP submission.
type EmailConfig struct {
	To        []string
	From      string
	Smarthost string // host:port
	Username  string
	Password  string
	TLS       string
	// InsecureSkipVerify is for tests with a self-signed relay only.
	InsecureSkipVerify bool
}

// Limits bound what one receiver may take.
type Limits struct {
	// Timeout bounds one attempt.
	Timeout time.Duration
	// Deadline is how long after the first attempt retries go on before the notification is
	// dead-lettered.
	Deadline time.Duration
	// RatePerSecond and Burst limit attempts; Concurrency caps attempts in flight.
	RatePerSecond float64
	Burst         int
	Concurrency   int
}

// Templates are Go template sources. Title and Text are text/template, HTML is html/template;
// each executes with a *Notification. Link, when set, is a text/template executed with each
// change (a *tpv1.EscalationChange) that gives the URL the message links that change to, e.g.
// https://acme.zendesk.com/agent/tickets/{{label . "ticket"}}.
type Templates struct {
	Title string
	Text  string
	HTML  string
	Link  string
}

// ParseTemplates compiles the templates, so a broken one is caught when the file loads.
func ParseTemplates(name string, t Templates) error {
	for field, src := range map[string]string{"title": t.Title, "text": t.Text, "link": t.Link} {
		if src == "" {
			continue
		}
		if _, err := template.New(name + "." + field).Funcs(Funcs).Parse(src); err != nil {
			return fmt.Errorf("%s template: %w", field, err)
		}
	}
	if t.HTML != "" {
		if _, err := htmltemplate.New(name + ".html").Funcs(htmltemplate.FuncMap(Funcs)).Parse(t.HTML); err != nil {
			return fmt.Errorf("html template: %w", err)
		}
	}
	return nil
}

// Notification is one message to one receiver: the changes of one group.
type Notification struct {
	// ID is stable across retries of this message (the signed webhook's webhook-id).
	ID       string
	Receiver string
	// GroupKey identifies the group; GroupLabels are its group_by labels and values.
	GroupKey    string
	GroupLabels map[string]string
	Changes     []*tpv1.EscalationChange
	// At is when the message was composed.
	At time.Time
	// Reminder marks a repeat of escalations still open after the route's repeat_interval:
	// Changes are then each escalation's latest change, sent before.
	Reminder bool
	// links are the changes' URLs from the receiver's link template, by change.
	links map[*tpv1.EscalationChange]Link
}

// Link is a URL the receiver's link template made, its ticket data already URL-escaped: chat
// templates print it as a URL of their markup rather than escaping it as text.
type Link string

// LinkOf is the URL the receiver's link template gives for a change of this notification, or
// "" without one; templates call it as {{$.LinkOf .}} inside {{range .Changes}}.
func (n *Notification) LinkOf(c *tpv1.EscalationChange) Link { return n.links[c] }

// Result is the outcome of one attempt.
type Result struct {
	// Status is the HTTP status, or the SMTP reply code; 0 when none came.
	Status  int
	Err     error
	Latency time.Duration
	// Retryable: another attempt may succeed (timeouts, 5xx, 429, connection errors, SMTP 4xx).
	Retryable bool
	// Gone: the endpoint says it no longer exists (HTTP 410); the receiver is disabled.
	Gone bool
	// RetryAfter is the wait a retryable HTTP answer asked for (its Retry-After header), or 0.
	RetryAfter time.Duration
}

// Sender makes one delivery attempt.
type Sender interface {
	Send(ctx context.Context, n *Notification) Result
}
