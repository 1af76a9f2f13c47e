package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var screenshots = flag.String("screenshots", "", "directory the browser test writes PNG screenshots of the main pages to (docs/img when refreshing the README's)")

// chromium finds the browser; the test fails, never skips, without it: make test installs it
// (scripts/ensure-deps.sh).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the browser test needs Chromium: none of chromium, chromium-browser, google-chrome is on PATH; install it with bash scripts/ensure-deps.sh chromium")
	return ""
}

// axeSHA256 pins the vendored axe-core (testdata/axe-core/README.md).
const axeSHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"

// axeSource is the vendored axe-core, checked against its pinned checksum.
func axeSource(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(src); hex.EncodeToString(sum[:]) != axeSHA256 {
		t.Fatalf("testdata/axe-core/axe.min.js is not axe-core 4.14.1 (sha256 %x)", sum)
	}
	return string(src)
}

// axeViolation is one failed axe rule as the audit reports it.
type axeViolation struct {
	ID, Impact, Help string
	Nodes            []string
}

// axeRun runs axe on the whole document (every rule axe enables by default: WCAG 2.x A and AA,
// and its best practices) and returns the violations of impact serious or critical.
const axeRun = `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
	.filter(v => v.impact === "serious" || v.impact === "critical")
	.map(v => ({ID: v.id, Impact: v.impact, Help: v.help, Nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary)})))`

// The console in a real headless Chromium: sign in, the team page, sort, an agent, an
// escalation acknowledged in one tab changing live in another, a drill-down from the team page
// and a what-if; another tenant's URL is 403.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	s := startStack(t)
	base := "http://" + s.console.HTTP
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	events := append(ticket("T-1", oddAgent, "billing", start, 1), ticket("T-2", "bob", "billing", start, 5)...)
	events = append(events, ticket("T-3", "chen", "billing", start.Add(time.Minute), 4)...)
	// QA reviews and calls, so the pages audited show those figures too.
	events = append(events, review("b1", oddAgent, "billing", start.Add(5*time.Minute), 60, true), review("b2", "chen", "billing", start.Add(6*time.Minute), 90, false))
	events = append(events, inboundCall("BC1", oddAgent, "billing", start.Add(20*time.Minute), 12, 200)...)
	events = append(events, inboundCall("BC2", "chen", "billing", start.Add(30*time.Minute), 0, 0)...)
	postEvents(t, s.ingest, s.tenants.Acme, events)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	tab1, cancel1 := chromedp.NewContext(actx)
	defer cancel1()
	ctx, cancel := context.WithTimeout(tab1, 90*time.Second)
	defer cancel()
	var audited []string
	defer func() { t.Logf("axe-core audited: %s", strings.Join(audited, ", ")) }()

	do := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(ctx context.Context, sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	location := func(ctx context.Context) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	poll := func(ctx context.Context, what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	axe := axeSource(t)
	// audit injects axe-core into the page on screen (DevTools evaluation is not bound by the
	// page's Content-Security-Policy, which allows no such script) and fails the test on any
	// serious or critical violation.
	audit := func(ctx context.Context, page string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axe+";\ntrue")); err != nil {
			t.Fatalf("inject axe-core into the %s page: %v", page, err)
		}
		vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](axeRun, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe on the %s page: %v", page, err)
		}
		for _, v := range vs {
			t.Errorf("accessibility of the %s page: %s (%s): %s\n\t%s", page, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n\t"))
		}
		audited = append(audited, fmt.Sprintf("%s (%d serious or critical)", page, len(vs)))
	}
	shot := func(ctx context.Context, name string) {
		t.Helper()
		if *screenshots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	do(ctx, "the sign-in page", chromedp.Navigate(base+"/signin"), chromedp.WaitVisible(chromedp.ID("api_key")))
	audit(ctx, "sign-in")
	// The audit can fail: an input without a label (critical for axe) on the same page is found.
	canary, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](`document.querySelector("main").append(Object.assign(document.createElement("input"), {id: "axe-canary"}));`+axeRun, chromedp.EvalAwaitPromise))
	if err != nil || !slices.ContainsFunc(canary, func(v axeViolation) bool {
		return v.ID == "label" && strings.Contains(strings.Join(v.Nodes, " "), "#axe-canary")
	}) {
		t.Fatalf("axe did not report an unlabelled input (%v): %+v", err, canary)
	}
	do(ctx, "the sign-in page again", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("api_key")))
	do(ctx, "sign in", chromedp.WaitVisible(chromedp.ID("api_key")),
		chromedp.SendKeys(chromedp.ID("api_key"), s.tenants.Acme), chromedp.Submit(chromedp.ID("api_key")),
		chromedp.WaitVisible(chromedp.CSS("table.kpis")))
	if where := location(ctx); !strings.HasSuffix(where, "/t/acme/team") {
		t.Fatalf("after sign-in at %s", where)
	}
	eventually(t, "three agents in the browser, with their QA and call columns", func() bool {
		if chromedp.Do(ctx, chromedp.Navigate(base+"/t/acme/team?team=billing&window=24h"), chromedp.WaitVisible(chromedp.CSS("table.kpis"))) != nil {
			return false
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.kpis tbody th a").length * 100 + document.querySelectorAll("table.kpis thead th").length`))
		return err == nil && n == 322 // 3 agents; 14 ticket columns, 3 of QA, 5 of calls
	})
	safe, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelectorAll("script:not([src])").length === 0 && [...document.querySelectorAll("tbody th a")].some(a => a.textContent.includes("<script>alert(1)</script>"))`))
	if err != nil || !safe {
		t.Errorf("the hostile agent id is not shown as text: %v", err)
	}
	shot(ctx, "console-team")
	audit(ctx, "team")

	// Sorting by a column is a link: the server orders the rows.
	do(ctx, "sort by CSAT mean", chromedp.Click(chromedp.Search(`//th/a[text()="CSAT mean"]`)), chromedp.WaitVisible(chromedp.CSS(`th[aria-sort="ascending"]`)))
	if where, first := location(ctx), text(ctx, "table.kpis tbody th a"); !strings.Contains(where, "order=csat_mean") || !strings.HasPrefix(first, "ana/") {
		t.Errorf("sorted by CSAT mean at %s: first row %q, want the agent rated 1", where, first)
	}
	do(ctx, "sort descending", chromedp.Click(chromedp.Search(`//th/a[text()="CSAT mean"]`)), chromedp.WaitVisible(chromedp.CSS(`th[aria-sort="descending"]`)))
	if first := text(ctx, "table.kpis tbody th a"); first != "bob" {
		t.Errorf("CSAT mean descending: first row %q, want bob", first)
	}
	do(ctx, "sort by QA mean", chromedp.Click(chromedp.Search(`//th/a[text()="QA mean"]`)), chromedp.WaitVisible(chromedp.CSS(`th[aria-sort="ascending"]`)),
		chromedp.Click(chromedp.Search(`//th/a[text()="QA mean"]`)), chromedp.WaitVisible(chromedp.CSS(`th[aria-sort="descending"]`)))
	if where, first := location(ctx), text(ctx, "table.kpis tbody th a"); !strings.Contains(where, "order=qa_score_mean+desc") || first != "chen" {
		t.Errorf("sorted by QA mean, best first, at %s: first row %q, want chen (scored 90)", where, first)
	}
	// Only the call columns ticked in the filters: those and, as the rows are ordered by QA
	// mean, the QA columns.
	// The page before is marked, so the wait ends only on the page the choice loads.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.body.dataset.before = "1"; true`)); err != nil {
		t.Fatal(err)
	}
	do(ctx, "choose the call columns", chromedp.Click(chromedp.CSS(`input[name="cols"][value="calls"]`)), chromedp.Submit(chromedp.CSS(`input[name="cols"][value="calls"]`)),
		chromedp.WaitNotPresent(chromedp.CSS("body[data-before]")), chromedp.WaitVisible(chromedp.CSS("table.kpis")))
	if where := location(ctx); !strings.Contains(where, "cols=calls") {
		t.Errorf("after choosing the call columns at %s", where)
	}
	if labels, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.kpis thead th")].map(th => th.textContent)`)); err != nil ||
		!slices.Equal(labels, []string{"Agent", "Trend", "QA reviews", "QA mean", "QA auto-fail", "Calls answered", "Abandon rate", "Service level", "ASA", "AHT"}) {
		t.Errorf("columns with calls ticked: %q (%v)", labels, err)
	}

	do(ctx, "open the agent", chromedp.Click(chromedp.Search(`//tbody/tr/th/a[starts-with(text(), "ana/")]`)), chromedp.WaitVisible(chromedp.CSS("h1")))
	if h := text(ctx, "h1"); h != "Agent "+oddAgent {
		t.Errorf("agent page heading %q", h)
	}
	eventually(t, "the escalation on the agent page", func() bool {
		if chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("h1"))) != nil {
			return false
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".badge.sev-critical, #qa, #calls").length`))
		return err == nil && n == 3
	})
	shot(ctx, "console-agent")
	audit(ctx, "agent")

	// A second tab watches the escalations live.
	tab2, cancel2 := chromedp.NewContext(tab1)
	defer cancel2()
	ctx2, cancel2t := context.WithTimeout(tab2, 60*time.Second)
	defer cancel2t()
	do(ctx2, "second tab", chromedp.Navigate(base+"/t/acme/escalations"), chromedp.WaitVisible(chromedp.CSS("tr[data-id]")))
	poll(ctx2, "the second tab goes live", `document.getElementById("live-status").textContent.startsWith("Live:")`)
	if state := text(ctx2, "tr[data-id] td.state"); state != "open" {
		t.Fatalf("escalation state %q before acknowledging", state)
	}

	do(ctx, "acknowledge in the first tab", chromedp.Navigate(base+"/t/acme/escalations"), chromedp.WaitVisible(chromedp.CSS("tr[data-id]")),
		chromedp.Click(chromedp.CSS("tr[data-id] th a")), chromedp.WaitVisible(chromedp.ID("ack-note")),
		chromedp.SendKeys(chromedp.ID("ack-note"), "looking into it"), chromedp.Submit(chromedp.ID("ack-note")),
		// The acknowledged escalation's page has no acknowledge form: the new page has loaded.
		chromedp.WaitNotPresent(chromedp.ID("ack-note")), chromedp.WaitVisible(chromedp.ID("esc-state")))
	poll(ctx, "acknowledged in the first tab", `document.getElementById("esc-state") && document.getElementById("esc-state").textContent === "acknowledged"`)
	shot(ctx, "console-escalation")
	poll(ctx2, "the second tab changes live", `document.querySelector("tr[data-id] td.state").textContent === "acknowledged"`)
	shot(ctx2, "console-escalations")
	audit(ctx2, "escalations (live)")
	audit(ctx, "escalation")

	// Drill down from the odd agent's CSAT on the team page to the tickets rated 2 or less.
	do(ctx, "drill down from the team page", chromedp.Navigate(base+"/t/acme/team?team=billing&window=24h"), chromedp.WaitVisible(chromedp.CSS("table.kpis")),
		chromedp.Click(chromedp.Search(`//tbody/tr[th/a[starts-with(text(), "ana/")]]//a[contains(@href, "max_rating=2")]`)),
		chromedp.WaitVisible(chromedp.CSS("tr.ticket")))
	if row := text(ctx, "tr.ticket th"); row != "T-1" {
		t.Errorf("drill-down's first ticket %q, want T-1", row)
	}
	shot(ctx, "console-tickets")
	audit(ctx, "drill-down")

	// A what-if with a tightened rule: the rating of 4 would have escalated too.
	do(ctx, "what-if", chromedp.Navigate(base+"/t/acme/rules"), chromedp.WaitVisible(chromedp.ID("rules_yaml")))
	audit(ctx, "rules")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const t = document.getElementById("rules_yaml"); t.value = t.value.replace("max_score: 2", "max_score: 4"); document.querySelector('input[name="range"][value="24h"]').checked = true; return true })()`)); err != nil {
		t.Fatal(err)
	}
	do(ctx, "simulate", chromedp.Submit(chromedp.ID("rules_yaml")), chromedp.WaitVisible(chromedp.ID("whatif-result")))
	if counts := text(ctx, "#whatif-result .counts"); !strings.HasPrefix(counts, "1 added · 0 removed · 1 same") {
		t.Errorf("what-if counts %q, want 1 added, 1 same", counts)
	}
	shot(ctx, "console-rules")
	audit(ctx, "what-if result")

	do(ctx, "another tenant's page", chromedp.Navigate(base+"/t/globex/team"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if h := text(ctx, "h1"); !strings.HasPrefix(h, "403") {
		t.Errorf("globex's team page signed in to acme: %q, want 403", h)
	}
	do(ctx, "deliveries", chromedp.Navigate(base+"/t/acme/deliveries"), chromedp.WaitVisible(chromedp.CSS("h1")))
	shot(ctx, "console-deliveries")
	audit(ctx, "deliveries")

	// On a phone the page fits the screen's width; only the wide table scrolls, inside itself.
	do(ctx, "phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/t/acme/team?team=billing"), chromedp.WaitVisible(chromedp.CSS("table.kpis")))
	fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
	if err != nil || !fits {
		t.Errorf("the team page is wider than a 390 px phone screen (err %v)", err)
	}
}
