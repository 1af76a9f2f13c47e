package routing

import (
	"encoding/base64"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// kinds are the ways a receiver sends, as keys of its entry; exactly one is set.
var kinds = []string{receiver.KindSlack, receiver.KindTeams, receiver.KindWebhook, receiver.KindEmail}

const kindList = "slack:, teams:, webhook: or email:"

// webhookSecretPrefix starts every Standard Webhooks secret.
const webhookSecretPrefix = "whsec_"

func (l *loader) receivers(n *yaml.Node, path string, cfg *Config) {
	items, ok := l.List(n, path, "receivers")
	if ok && len(items) == 0 {
		l.Addf(yamlconf.Resolve(n), "%s: want at least one receiver", path)
	}
	first := map[string]int{}
	for i, item := range items {
		if rc := l.receiver(item, yamlconf.Index(path, i), first); rc != nil {
			cfg.Receivers[rc.Name] = rc
			cfg.ReceiverOrder = append(cfg.ReceiverOrder, rc.Name)
		}
	}
}

// receiver reads one receiver; nil when it has no usable name. first holds the line of every
// name seen so far.
func (l *loader) receiver(n *yaml.Node, path string, first map[string]int) *receiver.Config {
	f, ok := l.Fields(n, path, append([]string{"name"}, append(kinds, "limits", "templates")...)...)
	if !ok {
		return nil
	}
	at := yamlconf.Resolve(n)
	rc := &receiver.Config{Limits: DefaultLimits}
	rc.Name = l.nameField(f, at, path, first)
	var set []yamlconf.Pair
	for _, k := range kinds {
		p, ok := f[k]
		if !ok {
			continue
		}
		set = append(set, p)
		kpath := path + "." + k
		switch k {
		case receiver.KindSlack:
			rc.Slack = l.chat(p.Val, kpath)
		case receiver.KindTeams:
			rc.Teams = l.chat(p.Val, kpath)
		case receiver.KindWebhook:
			rc.Webhook = l.webhook(p.Val, kpath)
		case receiver.KindEmail:
			rc.Email = l.email(p.Val, kpath)
		}
	}
	switch len(set) {
	case 0:
		l.Addf(at, "%s: missing the way to send: one of %s", path, kindList)
	case 1:
		rc.Kind = set[0].Key.Value
	default:
		for _, p := range set[1:] {
			l.Addf(p.Key, "%s: %s: and %s: are both set; a receiver sends one way", path, set[0].Key.Value, p.Key.Value)
		}
	}
	if p, ok := f["limits"]; ok {
		rc.Limits = l.limits(p.Val, path+".limits")
	}
	if p, ok := f["templates"]; ok {
		name := rc.Name
		if name == "" {
			name = "receiver"
		}
		rc.Templates = l.templates(p.Val, path+".templates", name)
	}
	if rc.Name == "" {
		return nil
	}
	return rc
}

// nameField reads a receiver's name:, which must be unique. A valid name is recorded for
// routes to refer to even when the rest of its receiver has problems.
func (l *loader) nameField(f map[string]yamlconf.Pair, at *yaml.Node, path string, first map[string]int) string {
	name := l.NameField(f, at, path, namePattern, nameRule, first)
	if name != "" {
		l.receiverNames = append(l.receiverNames, name)
	}
	return name
}

// chat reads a Slack or Teams incoming webhook, whose URL is a secret.
func (l *loader) chat(n *yaml.Node, path string) *receiver.ChatConfig {
	c := &receiver.ChatConfig{}
	f, ok := l.Fields(n, path, "url")
	if !ok {
		return c
	}
	p, ok := f["url"]
	if !ok {
		l.Addf(yamlconf.Resolve(n), "%s: missing url: ({env: NAME} or {file: PATH}; whoever has the URL can post)", path)
		return c
	}
	s, ok := l.secret(p.Val, path+".url")
	if !ok {
		return c
	}
	if !httpURL(string(s.Value)) {
		l.Addf(p.Val, "%s.url: the URL in %s is not an http(s) URL with a host", path, s.From)
		return c
	}
	c.URL = string(s.Value)
	return c
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.Hostname() != ""
}

func (l *loader) webhook(n *yaml.Node, path string) *receiver.WebhookConfig {
	w := &receiver.WebhookConfig{}
	f, ok := l.Fields(n, path, "url", "secrets")
	if !ok {
		return w
	}
	at := yamlconf.Resolve(n)
	if p, ok := f["url"]; ok {
		if s, ok := l.Str(p.Val, path+".url"); ok {
			if httpURL(s) {
				w.URL = s
			} else {
				l.Addf(p.Val, "%s.url: %q is not an http(s) URL with a host", path, s)
			}
		}
	} else {
		l.Addf(at, "%s: missing url: (where to POST)", path)
	}
	if p, ok := f["secrets"]; ok {
		w.Secrets = l.webhookSecrets(p, path+".secrets")
	} else {
		l.Addf(at, "%s: missing secrets: (a list of {env: NAME} or {file: PATH}, each whsec_<base64>)", path)
	}
	return w
}

func (l *loader) webhookSecrets(at yamlconf.Pair, path string) []string {
	var out []string
	l.SecretList(at, path, l.secretRefs(), func(item *yaml.Node, path string, s yamlconf.Secret) {
		if reason := checkWebhookSecret(string(s.Value)); reason != "" {
			l.Addf(item, "%s: %s: not a Standard Webhooks secret (want whsec_ followed by base64): %s", path, s.From, reason)
			return
		}
		out = append(out, string(s.Value))
	})
	return out
}

// checkWebhookSecret answers why s is not "whsec_<base64>", without quoting it, or "".
func checkWebhookSecret(s string) string {
	enc, ok := strings.CutPrefix(s, webhookSecretPrefix)
	if !ok {
		return "missing the whsec_ prefix"
	}
	k, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// CorruptInputError holds only an offset, so it is safe to show.
		return err.Error()
	}
	if len(k) == 0 {
		return "empty key"
	}
	return ""
}

func (l *loader) email(n *yaml.Node, path string) *receiver.EmailConfig {
	e := &receiver.EmailConfig{TLS: receiver.TLSStartTLS}
	f, ok := l.Fields(n, path, "to", "from", "smarthost", "username", "password", "tls")
	if !ok {
		return e
	}
	at := yamlconf.Resolve(n)
	if p, ok := f["to"]; ok {
		e.To, _ = l.UniqueItems(p.Val, path+".to", "at least one address", l.address)
	} else {
		l.Addf(at, "%s: missing to: (one address or a list)", path)
	}
	if p, ok := f["from"]; ok {
		e.From, _ = l.address(p.Val, path+".from")
	} else {
		l.Addf(at, "%s: missing from: (the sender address)", path)
	}
	host := ""
	if p, ok := f["smarthost"]; ok {
		e.Smarthost, host = l.smarthost(p.Val, path+".smarthost")
	} else {
		l.Addf(at, "%s: missing smarthost: (the SMTP relay, host:port)", path)
	}
	user, hasUser := f["username"]
	if hasUser {
		e.Username, _ = l.Str(user.Val, path+".username")
	}
	switch pw, hasPassword := f["password"]; {
	case hasPassword && !hasUser:
		l.Addf(pw.Key, "%s: password: is set without username:", path)
		l.secret(pw.Val, path+".password")
	case hasPassword:
		if s, ok := l.secret(pw.Val, path+".password"); ok {
			e.Password = string(s.Value)
		}
	case hasUser:
		l.Addf(user.Key, "%s: username: is set without password: ({env: NAME} or {file: PATH})", path)
	}
	if p, ok := f["tls"]; ok {
		if mode, ok := l.OneOf(p.Val, path+".tls", "TLS mode", receiver.TLSStartTLS, receiver.TLSImplicit, receiver.TLSNone); ok {
			e.TLS = mode
			if mode == receiver.TLSNone && host != "" && !loopback(host) {
				l.Addf(p.Val, "%s.tls: none sends mail and password in clear; it is only for a smarthost on loopback (localhost, 127.0.0.1, ::1), not %s", path, host)
			}
		}
	}
	return e
}

func (l *loader) address(n *yaml.Node, path string) (string, bool) {
	s, ok := l.Str(n, path)
	if !ok {
		return "", false
	}
	if _, err := mail.ParseAddress(s); err != nil {
		l.Addf(n, "%s: %q is not an e-mail address", path, s)
		return "", false
	}
	return s, true
}

// smarthost reads host:port, answering it and its host.
func (l *loader) smarthost(n *yaml.Node, path string) (string, string) {
	s, ok := l.Str(n, path)
	if !ok {
		return "", ""
	}
	host, port, err := net.SplitHostPort(s)
	p, perr := strconv.Atoi(port)
	if err != nil || host == "" || perr != nil || p < 1 || p > 65535 || strings.ContainsAny(port, "+-") {
		l.Addf(n, "%s: %q is not host:port (write e.g. smtp.example.com:587)", path, s)
		return "", ""
	}
	return s, host
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (l *loader) limits(n *yaml.Node, path string) receiver.Limits {
	lim := DefaultLimits
	f, ok := l.Fields(n, path, "timeout", "deadline", "rate_per_second", "burst", "concurrency")
	if !ok {
		return lim
	}
	timeoutOK, deadlineOK := true, true
	if p, ok := f["timeout"]; ok {
		if v, ok := l.Duration(p.Val, path+".timeout"); ok {
			lim.Timeout = v
		} else {
			timeoutOK = false
		}
	}
	if p, ok := f["deadline"]; ok {
		if v, ok := l.DurationWith(p.Val, path+".deadline", yamlconf.DurationRule{Days: true}); ok {
			lim.Deadline = v
		} else {
			deadlineOK = false
		}
	}
	if timeoutOK && deadlineOK && lim.Deadline < lim.Timeout {
		at := yamlconf.Resolve(n)
		if p, ok := f["deadline"]; ok {
			at = p.Val
		} else if p, ok := f["timeout"]; ok {
			at = p.Val
		}
		l.Addf(at, "%s: the deadline (%s) is shorter than one attempt's timeout (%s)", path,
			yamlconf.FormatDuration(lim.Deadline), yamlconf.FormatDuration(lim.Timeout))
	}
	if p, ok := f["rate_per_second"]; ok {
		if v, ok := l.PositiveNumber(p.Val, path+".rate_per_second"); ok {
			lim.RatePerSecond = v
		}
	}
	if p, ok := f["burst"]; ok {
		if v, ok := l.PositiveInt(p.Val, path+".burst"); ok {
			lim.Burst = v
		}
	}
	if p, ok := f["concurrency"]; ok {
		if v, ok := l.PositiveInt(p.Val, path+".concurrency"); ok {
			lim.Concurrency = v
		}
	}
	return lim
}

// templates reads the template sources and compiles each, so a broken one is reported at its
// line.
func (l *loader) templates(n *yaml.Node, path, name string) receiver.Templates {
	var t receiver.Templates
	f, ok := l.Fields(n, path, "title", "text", "html", "link")
	if !ok {
		return t
	}
	read := func(key string, set func(*receiver.Templates, string)) {
		p, ok := f[key]
		if !ok {
			return
		}
		src, ok := l.Str(p.Val, path+"."+key)
		if !ok {
			return
		}
		var one receiver.Templates
		set(&one, src)
		if err := receiver.ParseTemplates(name, one); err != nil {
			l.Addf(p.Val, "%s.%s: %v", path, key, err)
			return
		}
		set(&t, src)
	}
	read("title", func(t *receiver.Templates, s string) { t.Title = s })
	read("text", func(t *receiver.Templates, s string) { t.Text = s })
	read("html", func(t *receiver.Templates, s string) { t.HTML = s })
	read("link", func(t *receiver.Templates, s string) { t.Link = s })
	return t
}

// secretRefs resolves the file's {env: NAME} and {file: PATH} references (see yamlconf.Secret),
// files relative to its directory.
func (l *loader) secretRefs() yamlconf.SecretRefs {
	return yamlconf.SecretRefs{Dir: l.dir, Getenv: l.getenv}
}

func (l *loader) secret(n *yaml.Node, path string) (yamlconf.Secret, bool) {
	return l.Secret(n, path, l.secretRefs())
}
