package tenants

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// deployExample is the tenants file docker compose mounts into every service.
const deployExample = "../../../../deploy/tenants.example.yaml"

// uncommentSources returns s with its commented-out `# sources:` block uncommented: the line
// `<indent># sources:` and the lines after it that start with `<indent>#   ` lose their `# `.
// It also returns how many lines it uncommented.
func uncommentSources(s string) (string, int) {
	lines := strings.Split(s, "\n")
	indent, n := "", 0
	for i, line := range lines {
		if n == 0 {
			if strings.TrimSpace(line) == "# sources:" {
				indent, _, _ = strings.Cut(line, "#")
				lines[i], n = indent+"sources:", 1
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, indent+"# ")
		if !ok || !strings.HasPrefix(rest, "  ") {
			break
		}
		lines[i] = indent + rest
		n++
	}
	return strings.Join(lines, "\n"), n
}

// TestDeployExample loads deploy/tenants.example.yaml with ingest's parser, as it is and with
// its example webhook sources uncommented: the example must name every source ingest knows, with
// settings ingest accepts, so it cannot drift from the code.
func TestDeployExample(t *testing.T) {
	raw, err := os.ReadFile(deployExample)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range exampleEnv {
		env[k] = v
	}
	for _, name := range []string{"KEY_HASH_OPERATOR_OPS", "KEY_HASH_ACME_ALL", "KEY_HASH_GLOBEX_ALL"} {
		_, h, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		env[name] = h.String()
	}
	load := func(t *testing.T, text string) *Config {
		t.Helper()
		cfg, err := Load(writeTenants(t, text, nil), getenv(env))
		if err != nil {
			t.Fatalf("Load(%s): %v", deployExample, err)
		}
		return cfg
	}

	t.Run("as it is", func(t *testing.T) {
		cfg := load(t, string(raw))
		for _, id := range []string{"acme", "globex"} {
			if tn, ok := cfg.Tenant(id); !ok || len(tn.Sources) != 0 {
				t.Errorf("tenant %s: %+v, %v; want it with no webhook source", id, tn, ok)
			}
		}
	})

	t.Run("sources uncommented", func(t *testing.T) {
		text, n := uncommentSources(string(raw))
		if n < len(verify.Sources) {
			t.Fatalf("%d lines of the commented sources block uncommented; want at least one per source (%d)", n, len(verify.Sources))
		}
		cfg := load(t, text)
		acme, _ := cfg.Tenant("acme")
		if len(acme.Sources) != len(verify.Sources) {
			t.Errorf("acme has %d sources; want every one of %v", len(acme.Sources), verify.Sources)
		}
		for _, source := range verify.Sources {
			if _, ok := Source(cfg, "acme", source); !ok {
				t.Errorf("the example lacks %s", source)
			}
		}
		settings := []struct {
			source string
			want   adapter.Settings
		}{
			{verify.Typeform, adapter.Settings{TicketField: "ticket_id", ScoreQuestion: "csat", Scale: "1-5"}},
			{verify.SurveyMonkey, adapter.Settings{TicketField: "ticket_id", ScoreQuestion: "667461690", Scale: "nps"}},
			{verify.Qualtrics, adapter.Settings{TicketField: "ticket_id", ScoreQuestion: "QID3", Scale: "1-10"}},
			{verify.Five9, adapter.Settings{TicketField: "ticket_id"}},
		}
		for _, s := range settings {
			if sc, _ := Source(cfg, "acme", s.source); sc == nil || sc.Settings != s.want {
				t.Errorf("%s settings %+v, want %+v", s.source, sc, s.want)
			}
		}
		// Each source's credential is the one its environment variable holds.
		credentials := []struct {
			source string
			give   verify.Delivery
		}{
			{verify.Zendesk, signed(t, verify.Zendesk, "sekrit-zd-new")},
			{verify.Typeform, signed(t, verify.Typeform, "sekrit-tf")},
			{verify.Five9, verify.Delivery{Query: url.Values{"token": {"sekrit-f9-token"}}}},
			{verify.Genesys, verify.Delivery{Header: http.Header{"X-Ticketpulse-Secret": {"sekrit-gc"}}, Body: []byte("{}")}},
			{verify.RingCentral, verify.Delivery{Header: http.Header{"Verification-Token": {"sekrit-rc"}}, Body: []byte("{}")}},
		}
		for _, c := range credentials {
			if sc, _ := Source(cfg, "acme", c.source); sc == nil || !accepts(t, sc, c.give) {
				t.Errorf("%s: a delivery with the configured credential was refused", c.source)
			}
		}
		if hs, _ := Source(cfg, "acme", verify.HubSpot); hs == nil || !hs.HubSpotAPI.Configured() {
			t.Errorf("hubspot: %+v, want its conversation messages looked up with the example's access_token", hs)
		}
		for _, source := range []string{verify.SurveyMonkey, verify.Qualtrics} {
			if sc, _ := Source(cfg, "acme", source); sc == nil || !sc.SurveyAPI.Configured() {
				t.Errorf("%s: %+v, want its responses looked up with the example's access_token", source, sc)
			}
		}
	})
}

func TestUncommentSources(t *testing.T) {
	tests := []struct {
		name, give, want string
		lines            int
	}{
		{"none", "tenants:\n  acme: {}\n", "tenants:\n  acme: {}\n", 0},
		{"block ends at a shallower comment",
			"    # sources:\n    #   five9:\n    #     url_token: x\n    # not yaml\n",
			"    sources:\n      five9:\n        url_token: x\n    # not yaml\n", 3},
		{"block ends at a setting",
			"    # sources:\n    #   # a heading\n    #   zammad: {}\n  globex:\n",
			"    sources:\n      # a heading\n      zammad: {}\n  globex:\n", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := uncommentSources(tt.give)
			if got != tt.want || n != tt.lines {
				t.Errorf("uncommentSources(%q) = %q, %d; want %q, %d", tt.give, got, n, tt.want, tt.lines)
			}
		})
	}
}
