package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// callsDir holds each contact centre's recorded call lives (copies of the adapters' fixtures,
// see its README).
const callsDir = "testdata/calls"

// The contact centres' credentials in the call test's tenants file.
const (
	callFive9Token       = "e2e-five9-url-token"
	callGenesysSecret    = "e2e-genesys-shared-secret"
	callRingCentralToken = "e2e-ringcentral-verification-token"
)

// callTenants gives acme the Five9 source (its calls name acme's tickets) and adds a tenant for
// each of the other two, after globex, so no source's figures mix with another's.
func callTenants() map[string]string {
	return map[string]string{
		"acme": `    sources:
      five9:
        url_token: {env: E2E_F9_TOKEN}
        ticket_field: ticket_id
`,
		"globex": `  e2e-calls-genesys:
    sources:
      genesys:
        secrets: [{env: E2E_GC_SECRET}]
  e2e-calls-ringcentral:
    sources:
      ringcentral:
        secrets: [{env: E2E_RC_TOKEN}]
`,
	}
}

// callAnswer is what ingest answers a webhook delivery (the fields this test reads).
type callAnswer struct {
	Accepted   []string `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Skipped    []struct {
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	} `json:"skipped"`
}

// postCall posts a recorded delivery of source to tenant's webhook with the credential the
// contact centre sends (Five9: the URL token; Genesys Cloud: the shared-secret header the Data
// Action sends; RingCentral: the subscription's Verification-Token) and expects it taken.
func postCall(t *testing.T, addr, tenant, source, path string) callAnswer {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + "/v1/tenants/" + tenant + "/webhooks/" + source
	h := http.Header{"Content-Type": {"application/json"}}
	switch source {
	case "five9":
		url += "?token=" + callFive9Token
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	case "genesys":
		h.Set("X-Ticketpulse-Secret", callGenesysSecret)
	case "ringcentral":
		h.Set("Verification-Token", callRingCentralToken)
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	// 202 once the events are stored; 200 when the delivery maps to nothing to store.
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", source, filepath.Base(path), resp.StatusCode, raw)
	}
	var a callAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s %s: answer %s: %v", source, filepath.Base(path), raw, err)
	}
	return a
}

// callFigures are the call KPIs of one scope, as kpi serves them.
type callFigures struct {
	Offered, Answered, Abandoned, InServiceLevel int64
	AbandonRate, ServiceLevel                    float64
	AnswerCount                                  int64 // speed of answer samples
	AnswerSeconds                                float64
	HandleCount                                  int64 // handle time samples
	HandleSeconds                                float64
}

func callFiguresOf(k *tpv1.Kpis) callFigures {
	return callFigures{
		Offered: k.GetCallsOffered(), Answered: k.GetCallsAnswered(), Abandoned: k.GetCallsAbandoned(),
		InServiceLevel: k.GetCallsAnsweredInServiceLevel(),
		AbandonRate:    k.GetCallAbandonRate(), ServiceLevel: k.GetCallServiceLevel(),
		AnswerCount: k.GetCallSpeedOfAnswer().GetCount(), AnswerSeconds: k.GetCallSpeedOfAnswer().GetSumSeconds(),
		HandleCount: k.GetCallHandleTime().GetCount(), HandleSeconds: k.GetCallHandleTime().GetSumSeconds(),
	}
}

// Each contact centre's recorded call lives, posted through ingest's webhook for that source
// (with one step delivered twice), reach kpi's gRPC figures exactly as computed by hand below:
// an answered call counts for the agent who answered it, an abandoned one for the tenant's
// unassigned figures, and a Five9 call linked to a ticket is that ticket's first response.
func TestCallLives(t *testing.T) {
	s := newStackWith(t, callTenants())
	// The service-level threshold: 30 s for the Genesys and RingCentral tenants; acme sets none
	// and has the default 20 s.
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("tenants:\n  e2e-calls-genesys:\n    call_service_level: 30s\n  e2e-calls-ringcentral:\n    call_service_level: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startIngest(t, s, "E2E_F9_TOKEN="+callFive9Token, "E2E_GC_SECRET="+callGenesysSecret, "E2E_RC_TOKEN="+callRingCentralToken)
	// The ticket index serves ListTicketKpis.
	k, _ := startKPILogs(t, s, "TICKETPULSE_RULES_FILE="+rules, "TICKETPULSE_TICKET_INDEX=true")
	client := k.as(s.tenants.Operator)

	// Five9's answered call is linked to acme's ticket 48213, which the customer opened at 11:38
	// in the helpdesk (the events API here), for the team phones.
	post(t, addr, "acme", s.tenants.Acme, []map[string]any{{
		"id": "hd-48213-c", "ticket_id": "48213", "type": "ticket_created", "occurred_at": "2026-11-24T11:38:00Z",
		"actor": map[string]any{"id": "cust-48213", "kind": "customer"}, "team_id": "phones", "priority": "normal", "status": "new",
	}})

	// Every call of the fixtures is on 2026-11-24 between 11:40 and 11:47 UTC.
	w := window(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	lives := []struct {
		source, tenant string
		// redeliver is the step delivered a second time, which must store nothing new.
		redeliver string
		agent     string
		// agentWant: the answered call (0x-*); unassignedWant: the abandoned call (1x-*), which
		// names no agent.
		agentWant, unassignedWant callFigures
	}{
		{
			source: "five9", tenant: "acme", redeliver: "02-accepted.form", agent: "maria.lopez@acme.example",
			// Call 300000000000977: call_queued 11:40:00, call_accepted 11:40:25, call_disconnected
			// 11:46:07 with talk_time 00:05:42, hold_time 00:00:30, wrapup_time 00:00:45.
			// Speed of answer: 11:40:25 - 11:40:00 = 25 s; in service level: 25 s > 20 s (acme's
			// default), so no: 0 of 1 offered. Handle time: 342 + 30 + 45 = 417 s.
			agentWant: callFigures{Offered: 1, Answered: 1, Abandoned: 0, InServiceLevel: 0, AbandonRate: 0, ServiceLevel: 0,
				AnswerCount: 1, AnswerSeconds: 25, HandleCount: 1, HandleSeconds: 417},
			// Call 300000000000412: call_queued 11:40:00, call_abandoned 11:41:30 with no agent.
			// Abandon rate 1 / 1; no answer, nothing handled.
			unassignedWant: callFigures{Offered: 1, Abandoned: 1, AbandonRate: 1},
		},
		{
			source: "genesys", tenant: "e2e-calls-genesys", redeliver: "02-acd-end.json", agent: "1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
			// Conversation 6a7b8c9d-…: acd.start at eventTime 1795520400000 (11:40:00.000), acd.end
			// ANSWERED at 1795520425400 (11:40:25.400), user.end with interactingDurationMs 342000
			// and heldDurationMs 30500. Speed of answer: 25.400 s <= 30 s, in service level: 1 of 1.
			// The acw event that follows gives wrapupDurationMs 45000. Handle time: talk and hold
			// from user.end, wrap-up from acw: 342 + 30.5 + 45 = 417.5 s, one sample.
			agentWant: callFigures{Offered: 1, Answered: 1, Abandoned: 0, InServiceLevel: 1, AbandonRate: 0, ServiceLevel: 1,
				AnswerCount: 1, AnswerSeconds: 25.4, HandleCount: 1, HandleSeconds: 417.5},
			// Conversation 4f0b6c7e-…: acd.start 11:40:00, acd.end ABANDON 11:41:30. Abandon rate 1 / 1.
			unassignedWant: callFigures{Offered: 1, Abandoned: 1, AbandonRate: 1},
		},
		{
			source: "ringcentral", tenant: "e2e-calls-ringcentral", redeliver: "02-answered.json", agent: "62264425",
			// Telephony session s-b7c1d2e3…: the agent extension's party Proceeding at 11:40:00,
			// Answered at 11:40:25, Disconnected at 11:46:10. RingCentral sends no durations, so
			// the speed of answer comes from the two event times: 11:40:25 - 11:40:00 = 25 s
			// <= 30 s, in service level: 1 of 1; and the handle time is answer to end (no
			// duration given): 11:46:10 - 11:40:25 = 345 s.
			agentWant: callFigures{Offered: 1, Answered: 1, Abandoned: 0, InServiceLevel: 1, AbandonRate: 0, ServiceLevel: 1,
				AnswerCount: 1, AnswerSeconds: 25, HandleCount: 1, HandleSeconds: 345},
			// Session s-a0d7e1b2…40: only its Disconnected notification, missedCall true: the
			// call counts as offered (any event of an inbound call does) and abandoned, 1 / 1.
			unassignedWant: callFigures{Offered: 1, Abandoned: 1, AbandonRate: 1},
		},
	}
	for _, l := range lives {
		t.Run(l.source, func(t *testing.T) {
			dir := filepath.Join(callsDir, l.source)
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			stored := 0
			for _, e := range entries { // ReadDir sorts by name: the deliveries in order
				a := postCall(t, addr, l.tenant, l.source, filepath.Join(dir, e.Name()))
				if len(a.Accepted) != 1 || a.Duplicates != 0 || len(a.Skipped) != 0 {
					t.Errorf("%s: %+v, want one new event", e.Name(), a)
				}
				stored += len(a.Accepted)
			}
			if stored < 4 {
				t.Fatalf("%d call events stored from %s, want a whole answered call and an abandoned one", stored, dir)
			}
			// The contact centre delivers a step again: nothing new is stored, nothing counts twice.
			if a := postCall(t, addr, l.tenant, l.source, filepath.Join(dir, l.redeliver)); a.Duplicates != 1 {
				t.Errorf("redelivered %s: %+v, want one duplicate", l.redeliver, a)
			}

			var agent, unassigned callFigures
			deadline := time.Now().Add(time.Minute)
			for {
				ar, aerr := client.GetAgentKpis(context.Background(), &tpv1.GetAgentKpisRequest{Tenant: l.tenant, AgentId: l.agent, Window: w})
				ur, uerr := client.GetUnassignedKpis(context.Background(), &tpv1.GetUnassignedKpisRequest{Tenant: l.tenant, Window: w})
				if aerr == nil && uerr == nil {
					agent, unassigned = callFiguresOf(ar.GetAgent().GetKpis()), callFiguresOf(ur.GetKpis())
					// The figures are waited for whole: a call's later event (Genesys' wrap-up after
					// its user.end) can change a figure that an earlier one already set.
					if agent == l.agentWant && unassigned == l.unassignedWant {
						break
					}
				}
				if time.Now().After(deadline) {
					if aerr != nil || uerr != nil {
						t.Fatalf("kpi did not answer: %v, %v", aerr, uerr)
					}
					break // compared below, where a difference is reported field by field
				}
				time.Sleep(50 * time.Millisecond)
			}
			if agent != l.agentWant {
				t.Errorf("agent %s:\n got  %+v\n want %+v", l.agent, agent, l.agentWant)
			}
			if unassigned != l.unassignedWant {
				t.Errorf("unassigned:\n got  %+v\n want %+v", unassigned, l.unassignedWant)
			}
		})
	}

	// The Five9 call answered at 11:40:25 is ticket 48213's first response, by the agent who
	// answered it: 11:40:25 - 11:38:00 = 145 s, credited to her and to the ticket's team.
	t.Run("five9 call as the ticket's first response", func(t *testing.T) {
		const agent, firstResponse = "maria.lopez@acme.example", 145.0
		answeredAt := time.Date(2026, 11, 24, 11, 40, 25, 0, time.UTC)
		var ticket *tpv1.TicketKpis
		deadline := time.Now().Add(time.Minute)
		for ticket == nil {
			resp, err := client.ListTicketKpis(context.Background(), &tpv1.ListTicketKpisRequest{Tenant: "acme", Window: w})
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range resp.GetTickets() {
				if tk.GetTicketId() == "48213" && tk.FirstResponseSeconds != nil {
					ticket = tk
				}
			}
			if ticket == nil && time.Now().After(deadline) {
				t.Fatalf("ticket 48213 never got its first response: %v", resp.GetTickets())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := ticket.GetFirstResponseSeconds(); got != firstResponse || !ticket.GetFirstResponseAt().AsTime().Equal(answeredAt) {
			t.Errorf("ticket 48213: first response %v s at %v, want %v s at %v", got, ticket.GetFirstResponseAt().AsTime(), firstResponse, answeredAt)
		}
		if ticket.GetAgentId() != agent || ticket.GetTeamId() != "phones" {
			t.Errorf("ticket 48213 credited to agent %q, team %q; want %q, phones", ticket.GetAgentId(), ticket.GetTeamId(), agent)
		}
		ar, err := client.GetAgentKpis(context.Background(), &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: agent, Window: w})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := client.GetTeamKpis(context.Background(), &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: "phones", Window: w})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			scope string
			fr    *tpv1.DurationStats
		}{{"agent " + agent, ar.GetAgent().GetKpis().GetFirstResponse()}, {"team phones", tr.GetKpis().GetFirstResponse()}} {
			if c.fr.GetCount() != 1 || c.fr.GetSumSeconds() != firstResponse {
				t.Errorf("%s first response: %d samples, %v s; want 1, %v s", c.scope, c.fr.GetCount(), c.fr.GetSumSeconds(), firstResponse)
			}
		}
		// The call names no team: its own figures go to the agent, not to the ticket's team.
		if got := callFiguresOf(tr.GetKpis()); got != (callFigures{}) {
			t.Errorf("team phones call figures %+v, want none (calls count for the call's team, not the ticket's)", got)
		}
	})
}
