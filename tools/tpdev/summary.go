package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/redact"
)

// block writes text as is, without prefixes, so commands in it can be copied whole.
func (c *console) block(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = c.w.Write([]byte(text))
}

func (st *stack) printSummary(natsURL, redisURL string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nTicketpulse is running. Ctrl-C stops everything (the services first, then Redis and NATS).\n\n")
	has := map[string]bool{}
	for _, sp := range st.specs {
		has[sp.name] = true
		grpc := "-"
		if sp.grpcAddr != "" {
			grpc = sp.grpcAddr
		}
		fmt.Fprintf(&b, "  %-11s gRPC %-16s HTTP %-16s admin %s  (/metrics /debug/pprof/)\n", sp.name, grpc, sp.httpAddr, sp.adminAddr)
	}
	// The URLs may come from the environment with a password in them.
	fmt.Fprintf(&b, "  %-11s %s\n  %-11s %s\n", "NATS", redact.URL(natsURL), "Redis", redact.URL(redisURL))
	key := st.keyRef("acme")
	if st.keyFiles != nil {
		fmt.Fprintf(&b, "\nTenants acme and globex (tenants file %s) each have an API key with every tenant scope, in\n%s and %s; every request below sends acme's.\nMake more keys with go run ./tools/tpctl apikey new -h; the tenants file says where to add them.\n",
			st.rel(filepath.Join(st.runDir, "tenants.yaml")), st.rel(st.keyFiles["acme"]), st.rel(st.keyFiles["globex"]))
	} else {
		fmt.Fprintf(&b, "\nThe tenants file is TICKETPULSE_TENANTS_FILE's: set ACME_API_KEY to a key of tenant acme from it for the requests below.\n")
	}
	if has["ingest"] {
		fmt.Fprintf(&b, "\nPost two events (a ticket and the agent's first public reply):\n\n  %s\n", curlDemo(time.Now(), key))
		if st.webhookToken != "" {
			fmt.Fprintf(&b, "\nOr send what a Freshdesk automation sends (webhooks: see docs/helpdesks.md; they prove themselves with\nthe URL token of the tenants file %s, not with an API key):\n\n  %s\n",
				st.rel(filepath.Join(st.runDir, "tenants.yaml")), webhookDemo(time.Now(), st.webhookToken))
		}
	}
	if has["kpi"] {
		fmt.Fprintf(&b, "\nRead the agent's KPIs:\n\n  %s\n", grpcurlDemo(key))
		if _, err := exec.LookPath("grpcurl"); err != nil {
			fmt.Fprintf(&b, "\n  grpcurl is not on PATH; install it with\n  go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest\n  (it lands in $(go env GOPATH)/bin).\n")
		}
	}
	if has["escalation"] {
		if has["ingest"] {
			rules := "TICKETPULSE_RULES_FILE"
			if st.rulesFile != "" {
				rules = st.rel(st.rulesFile)
			}
			fmt.Fprintf(&b, "\nPost an urgent ticket nobody answered for 50 minutes (at risk now, breached in 10; rules %s):\n\n  %s\n",
				rules, escalationDemo(time.Now(), key))
		}
		fmt.Fprintf(&b, "\nList the open escalations:\n\n  %s\n", escalationsDemo(key))
	}
	if has["notify"] && st.inbox != nil {
		fmt.Fprintf(&b, "\nnotify sends every escalation change to a demo inbox on %s, whose lines appear above prefixed [inbox]\n(routing %s). See what was delivered, with every attempt:\n\n  %s\n",
			inboxAddr, st.rel(filepath.Join(st.runDir, "routing.yaml")), deliveriesDemo(key))
	}
	if has["console"] {
		fmt.Fprintf(&b, "\nThe supervisors' console: open http://127.0.0.1:8088/signin and sign in with acme's API key%s.\n", consoleKeyHint(st.keyFiles["acme"], st.rel))
	}
	if !has["ingest"] && !has["kpi"] {
		fmt.Fprintf(&b, "\nCheck readiness:\n\n  curl -sS http://%s/readyz\n", st.specs[0].httpAddr)
	}
	b.WriteString("\n")
	st.con.block(b.String())
}

// keyRef is how the printed commands read tenant's API key: from its file, so the key itself
// never appears on the screen or in the shell history. With the user's tenants file it is a
// variable the user sets.
func (st *stack) keyRef(tenant string) string {
	if f, ok := st.keyFiles[tenant]; ok {
		return "$(cat " + st.rel(f) + ")"
	}
	return "$" + strings.ToUpper(tenant) + "_API_KEY"
}

// curlAuth and grpcurlAuth are the flag that sends key (a shell expression) as the credential.
func curlAuth(key string) string    { return `-H "Authorization: Bearer ` + key + `"` }
func grpcurlAuth(key string) string { return `-H "authorization: Bearer ` + key + `"` }

func deliveriesDemo(key string) string {
	return `grpcurl -plaintext ` + grpcurlAuth(key) + ` -d '{"tenant":"acme"}' 127.0.0.1:9092 ticketpulse.v1.NotificationService/ListDeliveries`
}

func grpcurlDemo(key string) string {
	return `grpcurl -plaintext ` + grpcurlAuth(key) + ` -d '{"tenant":"acme","agent_id":"ana","window":{"rolling":"24h"}}' 127.0.0.1:9090 ticketpulse.v1.KpiService/GetAgentKpis`
}

// curlDemo posts a ticket created 25 minutes before now and answered 13 minutes later, so the
// rolling 24h window of grpcurlDemo shows a first response time of 780s. Ids carry the time so
// each run adds a new ticket instead of repeating a duplicate.
func curlDemo(now time.Time, key string) string {
	created := now.UTC().Truncate(time.Second).Add(-25 * time.Minute)
	replied := created.Add(13 * time.Minute)
	n := created.Unix()
	events := fmt.Sprintf(`[{"id":"demo-%[1]d-1","ticket_id":"T-%[1]d","type":"ticket_created","occurred_at":"%[2]s","actor":{"id":"cust-9","kind":"customer"},"assignee_id":"ana","team_id":"billing","priority":"high","status":"new","channel":"email"},`+
		`{"id":"demo-%[1]d-2","ticket_id":"T-%[1]d","type":"agent_message","occurred_at":"%[3]s","actor":{"id":"ana","kind":"agent"},"assignee_id":"ana","team_id":"billing","priority":"high","public":true}]`,
		n, created.Format(time.RFC3339), replied.Format(time.RFC3339))
	return "curl -sS -X POST " + curlAuth(key) + " -H 'Content-Type: application/json' --data '" + events + "' http://127.0.0.1:8080/v1/tenants/acme/events"
}

// webhookDemo is a Freshdesk "ticket created" automation delivery (the body of
// deploy/webhooks/freshdesk-automation-body.json, filled in) for a new ticket each run.
func webhookDemo(now time.Time, token string) string {
	at := now.UTC().Truncate(time.Second).Format("2006-01-02 15:04:05 UTC")
	body := fmt.Sprintf(`{"tp_event":"created","tp_actor":"customer","triggered_event":"{ticket_action:created}","ticket":{"id":"%d","status":"Open","priority":"High","agent_email":"ana","group_name":"billing","requester_id":"cust-9","requester_email":"cust-9@example.com","source":"Email","tags":"","created_on":"%s","modified_on":"%s"}}`,
		now.Unix(), at, at)
	return "curl -sS -X POST -H 'Content-Type: application/json' --data '" + body + "' 'http://127.0.0.1:8080/v1/tenants/acme/webhooks/freshdesk?token=" + token + "'"
}

// consoleKeyHint says where the console's sign-in key is; the key stays off the screen.
func consoleKeyHint(file string, rel func(string) string) string {
	if file == "" {
		return " (a key of tenant acme from TICKETPULSE_TENANTS_FILE's file)"
	}
	return ", the line in " + rel(file) + "\n(copy it with: cat " + rel(file) + ")"
}
