package tenants

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// The file is walked as a yaml.Node tree rather than decoded into structs: only the tree knows
// the line of every value, and walking it lets one pass report every problem, not the first.

// sourceKeys is each source's vocabulary. A key that does not apply (tolerance for a source that
// sends no timestamp) is an unknown key, so a setting never silently does nothing.
var sourceKeys = map[string][]string{
	verify.Zendesk:   {"secrets", "tolerance"},
	verify.Chatwoot:  {"secrets", "tolerance", "allow_unsigned_with_token"},
	verify.Freshdesk: {"url_token", "basic_auth"},
	verify.HelpScout: {"secrets"},
	verify.Zammad:    {"secrets"},
	verify.Intercom:  {"secrets"},
	verify.Generic:   {"secrets", "tolerance"},
}

// maxSecretFile bounds a secret file's size.
const maxSecretFile = 64 << 10

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

type loader struct {
	file   string
	dir    string
	getenv func(string) string
	probs  Problems
}

func (l *loader) addf(n *yaml.Node, format string, args ...any) {
	l.addLine(n.Line, fmt.Sprintf(format, args...))
}

func (l *loader) addLine(line int, reason string) {
	l.probs = append(l.probs, Problem{File: l.file, Line: max(line, 1), Reason: reason})
}

// join extends a dotted path; keys that would make it ambiguous are quoted.
func join(path, key string) string {
	if key == "" || strings.ContainsFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// prefix starts a message about path; the root has no path.
func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe names a node's kind without quoting its value, which may be a misplaced secret.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch {
		case isNull(n):
			return "nothing"
		case n.Value == "":
			return "an empty string"
		}
		return "a single value"
	}
	return "something else"
}

type pair struct{ key, val *yaml.Node }

// pairs returns a mapping's entries, reporting duplicate keys; null counts as an empty mapping.
// With quiet, keys are never quoted in messages: in a secret reference, "{hunter2}" is a mapping
// whose key is the secret.
func (l *loader) pairs(n *yaml.Node, path string, quiet bool) ([]pair, bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		l.addf(n, "%swant a mapping, not %s", prefix(path), describe(n))
		return nil, false
	}
	var out []pair
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.addf(k, "%skeys must be plain words, not %s", prefix(path), describe(k))
			continue
		}
		if line, dup := first[k.Value]; dup {
			if quiet {
				l.addf(k, "%sduplicate key (first on line %d)", prefix(path), line)
			} else {
				l.addf(k, "%sduplicate key %q (first on line %d)", prefix(path), k.Value, line)
			}
			continue
		}
		first[k.Value] = k.Line
		out = append(out, pair{k, v})
	}
	return out, true
}

// fields is pairs for a mapping with a fixed vocabulary: unknown keys are problems, and the
// known ones come back by name.
func (l *loader) fields(n *yaml.Node, path string, quiet bool, allowed ...string) (map[string]pair, bool) {
	ps, ok := l.pairs(n, path, quiet)
	out := make(map[string]pair, len(ps))
	for _, p := range ps {
		switch {
		case slices.Contains(allowed, p.key.Value):
			out[p.key.Value] = p
		case quiet:
			l.addf(p.key, "%sunknown key (allowed: %s)", prefix(path), strings.Join(allowed, ", "))
		default:
			l.addf(p.key, "%sunknown key %q (allowed: %s)", prefix(path), p.key.Value, strings.Join(allowed, ", "))
		}
	}
	return out, ok
}

func (l *loader) str(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) || n.Value == "" {
		l.addf(n, "%s: want a non-empty string, not %s", path, describe(n))
		return "", false
	}
	return n.Value, true
}

func (l *loader) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := l.str(n, path)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		l.addf(n, "%s: %q is not a duration (write e.g. 5m or 90s)", path, s)
		return 0, false
	case d <= 0:
		l.addf(n, "%s: %s is not positive", path, s)
		return 0, false
	}
	return d, true
}

func (l *loader) positiveNumber(n *yaml.Node, path string) (float64, bool) {
	n = resolve(n)
	var f float64
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil ||
		!(f > 0) || math.IsInf(f, 0) {
		l.addf(n, "%s: want a positive number, not %s", path, l.shown(n))
		return 0, false
	}
	return f, true
}

func (l *loader) positiveInt(n *yaml.Node, path string) (int, bool) {
	n = resolve(n)
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || i <= 0 {
		l.addf(n, "%s: want a positive whole number, not %s", path, l.shown(n))
		return 0, false
	}
	return i, true
}

// shown quotes a scalar for a message about a non-secret setting.
func (l *loader) shown(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return strconv.Quote(n.Value)
	}
	return describe(n)
}

func (l *loader) load(data []byte) *Config {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.addLine(1, "the file is empty; want a mapping with a tenants: key")
		} else {
			l.syntax(err, data)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		l.addf(&extra, "a second YAML document; the tenants file holds one")
	case !errors.Is(err, io.EOF):
		l.syntax(err, data)
	}
	if len(doc.Content) == 0 {
		l.addLine(1, "the file is empty; want a mapping with a tenants: key")
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		l.addf(root, "want a mapping with a tenants: key, not %s", describe(root))
		return nil
	}
	top, _ := l.fields(root, "", false, "defaults", "tenants")

	tolerance := verify.DefaultTolerance
	rate := RateLimit{EventsPerSecond: DefaultEventsPerSecond, Burst: DefaultBurst}
	if p, ok := top["defaults"]; ok {
		d, _ := l.fields(p.val, "defaults", false, "tolerance", "rate_limit")
		if p, ok := d["tolerance"]; ok {
			if v, ok := l.duration(p.val, "defaults.tolerance"); ok {
				tolerance = v
			}
		}
		if p, ok := d["rate_limit"]; ok {
			rate = l.rateLimit(p.val, "defaults.rate_limit", rate)
		}
	}

	cfg := &Config{Tenants: map[string]*Tenant{}}
	p, ok := top["tenants"]
	if !ok {
		l.addf(root, "missing tenants: (the tenants and their webhook sources)")
		return cfg
	}
	entries, ok := l.pairs(p.val, "tenants", false)
	if ok && len(entries) == 0 {
		l.addf(p.key, "tenants: no tenant defined")
	}
	for _, e := range entries {
		id := e.key.Value
		path := join("tenants", id)
		valid := idtoken.ValidTenant(id)
		if !valid {
			l.addf(e.key, "tenants: tenant id %q %s", id, idtoken.TenantRule)
		}
		// An invalid tenant's settings are still checked, so one run shows every problem.
		t := l.tenant(id, e.val, path, tolerance, rate)
		if valid {
			cfg.Tenants[id] = t
		}
	}
	return cfg
}

func (l *loader) rateLimit(n *yaml.Node, path string, def RateLimit) RateLimit {
	f, _ := l.fields(n, path, false, "events_per_second", "burst")
	if p, ok := f["events_per_second"]; ok {
		if v, ok := l.positiveNumber(p.val, path+".events_per_second"); ok {
			def.EventsPerSecond = v
		}
	}
	if p, ok := f["burst"]; ok {
		if v, ok := l.positiveInt(p.val, path+".burst"); ok {
			def.Burst = v
		}
	}
	return def
}

func (l *loader) tenant(id string, n *yaml.Node, path string, tolerance time.Duration, rate RateLimit) *Tenant {
	t := &Tenant{ID: id, RateLimit: rate, Sources: map[string]*SourceConfig{}}
	f, ok := l.fields(n, path, false, "rate_limit", "sources")
	if !ok {
		return t
	}
	if p, ok := f["rate_limit"]; ok {
		t.RateLimit = l.rateLimit(p.val, path+".rate_limit", rate)
	}
	p, ok := f["sources"]
	if !ok {
		return t
	}
	sources, _ := l.pairs(p.val, path+".sources", false)
	for _, s := range sources {
		name := s.key.Value
		if _, known := sourceKeys[name]; !known {
			l.addf(s.key, "%s.sources: unknown source %q (want one of %s)", path, name, strings.Join(verify.Sources, ", "))
			continue
		}
		t.Sources[name] = l.source(id, name, s, join(path+".sources", name), tolerance)
	}
	return t
}

func (l *loader) source(tenant, name string, at pair, path string, tolerance time.Duration) *SourceConfig {
	before := len(l.probs)
	sc := &SourceConfig{Tenant: tenant, Config: verify.Config{Source: name}}
	f, ok := l.fields(at.val, path, false, sourceKeys[name]...)
	if !ok {
		return sc
	}
	if slices.Contains(sourceKeys[name], "tolerance") {
		sc.Tolerance = tolerance
	}
	if p, ok := f["tolerance"]; ok {
		if v, ok := l.duration(p.val, path+".tolerance"); ok {
			sc.Tolerance = v
		}
	}
	p, hasSecrets := f["secrets"]
	if hasSecrets {
		sc.Secrets = l.secretList(p, path+".secrets", name == verify.Generic)
	}
	p, hasUnsigned := f["allow_unsigned_with_token"]
	if hasUnsigned {
		if s, ok := l.secret(p.val, path+".allow_unsigned_with_token"); ok {
			sc.URLToken = verify.NewSecret(s.raw)
		}
	}
	p, hasToken := f["url_token"]
	if hasToken {
		if s, ok := l.secret(p.val, path+".url_token"); ok {
			sc.URLToken = verify.NewSecret(s.raw)
		}
	}
	p, hasBasic := f["basic_auth"]
	if hasBasic {
		sc.BasicAuth = l.basicAuth(p.val, path+".basic_auth")
	}
	switch {
	case name == verify.Freshdesk && !hasToken && !hasBasic:
		l.addf(at.key, "%s: freshdesk cannot sign; set url_token:, basic_auth: or both", path)
	case name == verify.Chatwoot && !hasSecrets && !hasUnsigned:
		l.addf(at.key, "%s: set secrets: (or, for installs too old to sign, allow_unsigned_with_token:)", path)
	case name != verify.Freshdesk && name != verify.Chatwoot && !hasSecrets:
		l.addf(at.key, "%s: %s signs its deliveries; set secrets: (a list of {env: NAME} or {file: PATH})", path, name)
	}
	// verify has the last word on what it can work with; every rule above should make this moot.
	if len(l.probs) == before {
		if err := sc.Check(); err != nil {
			l.addf(at.key, "%s: %v", path, err)
		}
	}
	return sc
}

func (l *loader) secretList(at pair, path string, webhookSecrets bool) []verify.Secret {
	n := resolve(at.val)
	if isNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		l.addf(at.key, "%s: needs at least one secret", path)
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.addf(n, "%s: want a list of {env: NAME} or {file: PATH}, not %s", path, describe(n))
		return nil
	}
	out := make([]verify.Secret, 0, len(n.Content))
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		s, ok := l.secret(item, ipath)
		if !ok {
			continue
		}
		if webhookSecrets {
			k, err := verify.ParseWebhookSecret(string(s.raw))
			if err != nil {
				l.addf(item, "%s: %s: %v", ipath, s.from, err)
				continue
			}
			out = append(out, k)
			continue
		}
		out = append(out, verify.NewSecret(s.raw))
	}
	return out
}

// resolved is a secret read from its reference, with where it came from for messages.
type resolved struct {
	raw  []byte
	from string
}

// secret resolves {env: NAME} or {file: PATH}. It never quotes what it reads, nor a scalar
// written in its place, since that scalar is most likely a pasted secret.
func (l *loader) secret(n *yaml.Node, path string) (resolved, bool) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			l.addf(n, "%s: secrets are never written in this file; use {env: NAME} or {file: PATH}", path)
		} else {
			l.addf(n, "%s: want {env: NAME} or {file: PATH}, not %s", path, describe(n))
		}
		return resolved{}, false
	}
	ps, _ := l.pairs(n, path, true)
	var env, file *pair
	for i, p := range ps {
		switch p.key.Value {
		case "env":
			env = &ps[i]
		case "file":
			file = &ps[i]
		case "value":
			l.addf(p.key, "%s: secrets are never written in this file; use {env: NAME} or {file: PATH}", path)
		default:
			l.addf(p.key, "%s: unknown key (allowed: env, file)", path)
		}
	}
	switch {
	case env != nil && file != nil:
		l.addf(file.key, "%s: set env: or file:, not both", path)
	case env != nil:
		return l.envSecret(env.val, path+".env")
	case file != nil:
		return l.fileSecret(file.val, path+".file")
	case len(ps) == 0:
		l.addf(n, "%s: want {env: NAME} or {file: PATH}", path)
	}
	return resolved{}, false
}

func (l *loader) envSecret(n *yaml.Node, path string) (resolved, bool) {
	name, ok := l.str(n, path)
	if !ok {
		return resolved{}, false
	}
	if !envName.MatchString(name) {
		l.addf(n, "%s: %q is not an environment variable name", path, name)
		return resolved{}, false
	}
	v := l.getenv(name)
	if v == "" {
		l.addf(n, "%s: environment variable %s is unset or empty", path, name)
		return resolved{}, false
	}
	return resolved{raw: []byte(v), from: "environment variable " + name}, true
}

func (l *loader) fileSecret(n *yaml.Node, path string) (resolved, bool) {
	name, ok := l.str(n, path)
	if !ok {
		return resolved{}, false
	}
	full := name
	if !filepath.IsAbs(full) {
		full = filepath.Join(l.dir, full)
	}
	// A secret is short; a device, a pipe or a huge file is the wrong path, and reading it
	// could hang the start.
	if fi, err := os.Stat(full); err == nil && (!fi.Mode().IsRegular() || fi.Size() > maxSecretFile) {
		l.addf(n, "%s: %s is not a regular file of at most %d bytes", path, full, maxSecretFile)
		return resolved{}, false
	}
	b, err := os.ReadFile(full)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.addf(n, "%s: reading secret file %s: %v", path, full, err)
		return resolved{}, false
	}
	// Editors and `echo` end files with a newline that is not part of the secret.
	if t, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b = bytes.TrimSuffix(t, []byte("\r"))
	}
	if len(b) == 0 {
		l.addf(n, "%s: secret file %s is empty", path, full)
		return resolved{}, false
	}
	return resolved{raw: b, from: "file " + full}, true
}

func (l *loader) basicAuth(n *yaml.Node, path string) *verify.BasicAuth {
	f, ok := l.fields(n, path, false, "user", "password")
	ba := &verify.BasicAuth{}
	if !ok {
		return ba
	}
	if p, ok := f["user"]; ok {
		if u, ok := l.str(p.val, path+".user"); ok {
			if strings.Contains(u, ":") {
				l.addf(p.val, "%s.user: must not contain a colon (HTTP Basic separates user and password with one)", path)
			}
			ba.User = u
		}
	} else {
		l.addf(resolve(n), "%s: missing user:", path)
	}
	if p, ok := f["password"]; ok {
		if s, ok := l.secret(p.val, path+".password"); ok {
			ba.Password = verify.NewSecret(s.raw)
		}
	} else {
		l.addf(resolve(n), "%s: missing password: ({env: NAME} or {file: PATH})", path)
	}
	return ba
}

var (
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`unknown anchor '(.*)' referenced`)
)

// parserProblems are the messages of the YAML parser proper (not its scanner), whose line
// numbers the library reports 0-based: it adds the missing 1 for scanner errors only.
var parserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"did not find expected '-' indicator", "did not find expected <document start>",
	"did not find expected <stream-start>", "did not find expected key",
	"did not find expected node content", "found duplicate %TAG directive",
	"found duplicate %YAML directive", "found incompatible YAML document",
	"found undefined tag handle",
}

// syntax turns a YAML error into a Problem. The library leaves out the line when it is the first
// one, and for an unknown anchor, whose line is found by looking for the alias.
func (l *loader) syntax(err error, data []byte) {
	msg, line := err.Error(), 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(parserProblems, msg) {
			line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
			if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
				line = 1 + bytes.Count(data[:i], []byte("\n"))
			}
		}
	}
	l.addLine(line, "invalid YAML: "+msg)
}
