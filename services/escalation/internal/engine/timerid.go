package engine

import "strings"

// Timer ids: a kind letter, the tenant and the ticket or escalation id, separated by a byte
// neither a tenant nor an escalation id can hold (ticket ids may, and come last).
const sep = "\x1f"

func ticketTimer(tenant, ticket string) string { return "t" + sep + tenant + sep + ticket }
func escalationTimer(tenant, id string) string { return "e" + sep + tenant + sep + id }

// parseTimer splits a timer id into its kind letter, tenant and ticket or escalation id.
func parseTimer(id string) (kind, tenant, ref string, ok bool) {
	kind, rest, _ := strings.Cut(id, sep)
	tenant, ref, ok = strings.Cut(rest, sep)
	return kind, tenant, ref, ok
}
