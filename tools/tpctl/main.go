// Command tpctl is the operator CLI of Ticketpulse: API keys ("apikey new|hash"), KPIs ("kpis
// get|list"), escalations ("escalations list|get|ack|resolve|watch"), notify's deliveries
// ("deliveries list|get"), the what-if of escalation rules ("rules get|simulate"), resumable
// event replay into ingest ("events replay") and the rebuilds of KPIs and escalation's ticket
// log ("kpi rebuild", "escalation rebuild"). It speaks to the
// services' public gRPC and HTTP APIs with an API key, an operator key or an ID token.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

const usage = `tpctl administers Ticketpulse: credentials, KPIs, escalations, deliveries, event replay
and rebuilds.

Usage:
%s
"tpctl <command> -h" documents every flag of a command and the environment variable that sets it
(TICKETPULSE_KEY_FILE, TICKETPULSE_TENANT, TICKETPULSE_KPI_ADDR, ...). Services store only hashes
of API keys; a key cannot be shown again, so a lost key is replaced by a new one (rotation: add
the new key, move the clients, then mark the old one revoked: true).

Exit status: 0 done, 1 the command failed (the reason on standard error), 2 bad flags or arguments.
`

// maxKeyInput bounds what "apikey hash" reads; a key is 47 bytes.
const maxKeyInput = 4 << 10

// cmdIO is what a command reads and writes; tests pass buffers and a map for the environment.
type cmdIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
}

// command is one "tpctl <noun> <verb>".
type command struct {
	name, args, summary string
	run                 func(args []string, c cmdIO) error
}

var commands = []command{
	{"apikey new", "[flags]", "make an API key: print it once, with its hash and tenants-file entry", func(a []string, c cmdIO) error { return apikeyNew(a, c.stdout, c.stderr, c.lookup) }},
	{"apikey hash", "", "read an API key on standard input and print its sha256:... hash", apikeyHashCmd},
	{"kpis get", "[flags]", "one agent's, team's, queue's or the unassigned KPIs over a window", kpisGet},
	{"kpis list", "agents|teams|queues [flags]", "every agent's, team's or queue's KPIs over a window, all pages", kpisList},
	{"escalations list", "[flags]", "a tenant's escalations, newest first, filtered, all pages", escalationsList},
	{"escalations get", "[flags]", "one escalation with its timeline", escalationsGet},
	{"escalations ack", "[flags]", "acknowledge an open escalation (stops it being raised)", escalationsAck},
	{"escalations resolve", "[flags]", "resolve an escalation by hand", escalationsResolve},
	{"escalations watch", "[flags]", "stream escalation changes until interrupted, reconnecting", escalationsWatch},
	{"deliveries list", "[flags]", "notify's deliveries, newest first, filtered, all pages", deliveriesList},
	{"deliveries get", "[flags]", "one delivery with every attempt", deliveriesGet},
	{"rules get", "[flags]", "the tenant's escalation rules as loaded, as a rules file to edit", rulesGet},
	{"rules simulate", "[flags]", "what the rules (or an edited copy) would have raised over a past range", rulesSimulate},
	{"events replay", "[flags] FILE.jsonl", "post canonical events from a JSON-lines file, resumably", eventsReplay},
	{"events import", "-format maestroqa|scorebuddy [flags] FILE.csv", "post a QA tool's CSV export of scores as qa_scored events, resumably", eventsImport},
	{"kpi rebuild", "[flags]", "rebuild a tenant's KPIs from the TICKETS stream, live traffic flowing", func(a []string, c cmdIO) error { return rebuildCmd(kpiService, a, c.stdout, c.stderr, c.lookup) }},
	{"escalation rebuild", "[flags]", "rebuild a tenant's escalation ticket log from TICKETS, likewise", func(a []string, c cmdIO) error { return rebuildCmd(escalationService, a, c.stdout, c.stderr, c.lookup) }},
}

func usageText() string {
	var b strings.Builder
	for _, c := range commands {
		left := "tpctl " + c.name
		if c.args != "" {
			left += " " + c.args
		}
		if len(left) > 38 {
			fmt.Fprintf(&b, "  %s\n  %-38s  %s\n", left, "", c.summary)
			continue
		}
		fmt.Fprintf(&b, "  %-38s  %s\n", left, c.summary)
	}
	return fmt.Sprintf(usage, b.String())
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return 2
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usageText())
		return 0
	}
	var cmd *command
	if len(args) >= 2 {
		for i := range commands {
			if commands[i].name == args[0]+" "+args[1] {
				cmd = &commands[i]
			}
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "tpctl: unknown command %q\n\n%s", strings.Join(args[:min(2, len(args))], " "), usageText())
		return 2
	}
	err := cmd.run(args[2:], cmdIO{stdin: stdin, stdout: stdout, stderr: stderr, lookup: lookup})
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "tpctl %s: %v\n", cmd.name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "tpctl %s: %v\n", cmd.name, err)
		return 1
	}
}

func apikeyHashCmd(args []string, c cmdIO) error {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			fmt.Fprint(c.stderr, "tpctl apikey hash reads one API key on standard input and prints the sha256:... hash the services\nstore, to move a key between tenants files. It takes no flags and no arguments: a key is never\nread from the command line, where shell history and process lists would keep it.\n")
			return flag.ErrHelp
		}
		// Not echoed: the argument may well be the key.
		return usageError{errors.New("unexpected arguments: the key is read from standard input, never from the command line")}
	}
	return apikeyHash(c.stdin, c.stdout)
}

// usageError is a bad flag or argument: exit code 2, as for flag parsing errors.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

type newConfig struct {
	Tenant   string
	Operator bool
	Name     string
	Scopes   string
	OutKey   string
	OutHash  string
	HashEnv  string
}

func (c *newConfig) register(s *envflag.Set) {
	words := make([]string, len(auth.TenantScopes))
	for i, sc := range auth.TenantScopes {
		words[i] = string(sc)
	}
	s.String(&c.Tenant, "tenant", "", "Tenant the key acts for ("+idtoken.TenantRule+"); required unless -operator.")
	s.Bool(&c.Operator, "operator", false, "Make an operator key, which spans every tenant with every scope; its entry goes under operators: in the tenants file. Excludes -tenant and -scopes.")
	s.String(&c.Name, "name", "", "Name of the key, unique within its tenant, shown in logs and as who acknowledged or resolved ("+auth.KeyNameRule+"); e.g. ci-2026-12. Required.")
	s.String(&c.Scopes, "scopes", "", "Comma-separated scopes the key holds, from "+strings.Join(words, ", ")+". Required for a tenant key.")
	s.String(&c.OutKey, "out-key", "", "Write the key to this new file (mode 0600) instead of printing it; an existing file is never overwritten.")
	s.String(&c.OutHash, "out-hash", "", "Write the hash to this new file (mode 0644) and reference it as {file: ...} in the printed entry (the tenants file reads a relative path from its own directory); without it the entry references an environment variable (see -hash-env).")
	s.String(&c.HashEnv, "hash-env", "", "Name of the environment variable the printed entry references for the hash when -out-hash is not given; default KEY_HASH_<TENANT>_<NAME> in upper case.")
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// check returns every problem with the flags at once.
func (c *newConfig) check() ([]auth.Scope, error) {
	var errs []error
	switch {
	case c.Operator && (c.Tenant != "" || c.Scopes != ""):
		errs = append(errs, errors.New("-operator: an operator key has no tenant and every scope; drop -tenant and -scopes"))
	case !c.Operator && c.Tenant == "":
		errs = append(errs, errors.New("-tenant: required (or -operator for an operator key)"))
	case !c.Operator && !idtoken.ValidTenant(c.Tenant):
		errs = append(errs, fmt.Errorf("-tenant %q: %s", c.Tenant, idtoken.TenantRule))
	}
	if !auth.ValidKeyName(c.Name) {
		errs = append(errs, fmt.Errorf("-name %q: %s", c.Name, auth.KeyNameRule))
	}
	var scopes []auth.Scope
	if !c.Operator {
		if strings.TrimSpace(c.Scopes) == "" {
			errs = append(errs, errors.New("-scopes: required, e.g. events:write,kpis:read"))
		}
		seen := map[auth.Scope]bool{}
		for w := range strings.SplitSeq(c.Scopes, ",") {
			if w = strings.TrimSpace(w); w == "" {
				continue
			}
			sc, err := auth.ParseScope(w)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("-scopes: %w", err))
			case sc == auth.Operator:
				errs = append(errs, errors.New("-scopes: operator is not a tenant scope; use -operator"))
			case !seen[sc]:
				seen[sc] = true
				scopes = append(scopes, sc)
			}
		}
	}
	if c.HashEnv != "" && c.OutHash != "" {
		errs = append(errs, errors.New("-hash-env: the entry references the -out-hash file; give one of them"))
	}
	if c.HashEnv != "" && !envName.MatchString(c.HashEnv) {
		errs = append(errs, fmt.Errorf("-hash-env %q: not an environment variable name", c.HashEnv))
	}
	if c.OutKey != "" && c.OutKey == c.OutHash {
		errs = append(errs, errors.New("-out-key and -out-hash name the same file"))
	}
	return scopes, errors.Join(errs...)
}

func apikeyNew(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	var c newConfig
	s := envflag.New("tpctl apikey new", "tpctl apikey new makes an API key. It prints the key once (or writes it to -out-key), the\nsha256:... hash the services store, and the entry to add to the tenants file. Only the hash\ngoes into the tenants file, through an {env: NAME} or {file: PATH} reference.", lookup)
	s.SetOutput(stderr)
	c.register(s)
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	scopes, err := c.check()
	if err != nil {
		return usageError{err}
	}

	key, hash, err := auth.NewKey()
	if err != nil {
		return err
	}
	// The hash first: if the key file cannot be written after it, no key exists that anyone saw.
	ref := ""
	if c.OutHash != "" {
		if err := writeNew(c.OutHash, hash.String()+"\n", 0o644); err != nil {
			return err
		}
		ref = "{file: " + yamlString(c.OutHash) + "}"
	} else {
		env := c.HashEnv
		if env == "" {
			env = defaultHashEnv(c.Tenant, c.Name, c.Operator)
		}
		ref = "{env: " + env + "}"
	}
	if c.OutKey != "" {
		if err := writeNew(c.OutKey, key+"\n", 0o600); err != nil {
			if c.OutHash != "" {
				os.Remove(c.OutHash)
			}
			return err
		}
	}

	owner := "tenant " + c.Tenant
	if c.Operator {
		owner = "the operators"
	}
	w := &errWriter{w: stdout}
	if c.OutKey != "" {
		w.printf("API key %q of %s written to %s (mode 0600). It is not stored anywhere else.\n\n", c.Name, owner, c.OutKey)
	} else {
		w.printf("API key %q of %s. It is shown only now and stored nowhere: keep it in a secret store.\n%s\n\n", c.Name, owner, key)
	}
	w.printf("Hash (what the services store):\n%s\n\n", hash)
	if c.OutHash != "" {
		w.printf("Hash written to %s.\n\n", c.OutHash)
	} else {
		w.printf("Set %s to the hash where the services run.\n\n", strings.TrimSuffix(strings.TrimPrefix(ref, "{env: "), "}"))
	}
	w.printf("Tenants file entry:\n")
	if c.Operator {
		w.printf("operators:\n  api_keys:\n    - {name: %s, hash: %s}\n", c.Name, ref)
	} else {
		words := make([]string, len(scopes))
		for i, sc := range scopes {
			words[i] = string(sc)
		}
		w.printf("tenants:\n  %s:\n    api_keys:\n      - {name: %s, scopes: [%s], hash: %s}\n", c.Tenant, c.Name, strings.Join(words, ", "), ref)
	}
	return w.err
}

func apikeyHash(stdin io.Reader, stdout io.Writer) error {
	b, err := io.ReadAll(io.LimitReader(stdin, maxKeyInput+1))
	if err != nil {
		return fmt.Errorf("read standard input: %w", err)
	}
	if len(b) > maxKeyInput {
		return fmt.Errorf("standard input is longer than %d bytes: want one API key", maxKeyInput)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return errors.New("standard input is empty: want one API key")
	}
	// The key itself never appears in the error, whatever was piped in.
	if tok, kind, err := auth.ParseBearer("Bearer " + key); err != nil || kind != auth.CredentialAPIKey || tok != key {
		return fmt.Errorf("standard input is not a Ticketpulse API key (%s and %d characters in all)", auth.KeyPrefix, auth.KeyLen)
	}
	_, err = fmt.Fprintln(stdout, auth.HashKey(key))
	return err
}

// defaultHashEnv is KEY_HASH_<TENANT>_<NAME>, upper case, with every other character as _.
func defaultHashEnv(tenant, name string, operator bool) string {
	if operator {
		tenant = "OPERATOR"
	}
	return "KEY_HASH_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, tenant+"_"+name)
}

var plainPath = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)

// yamlString quotes a path for a YAML flow mapping when it needs it.
func yamlString(s string) string {
	if plainPath.MatchString(s) {
		return s
	}
	return fmt.Sprintf("%q", s)
}

// writeNew writes a new file, never replacing one: a key file overwritten by mistake is a key
// lost.
func writeNew(path, content string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := io.WriteString(f, content); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// errWriter keeps the first write error, so the printing reads straight.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
