package routing

import "sync"

// TenantLabel is the label that names an escalation's tenant.
const TenantLabel = "tenant"

// maxReachCached bounds the tenants whose receivers a Config remembers; beyond it they are
// computed on every call. Only the tenants of the registry ask in practice.
const maxReachCached = 4096

// reach caches Config.ReceiversFor per tenant for one loaded routing file, so a reload (a new
// Config) starts afresh.
type reach struct {
	mu       sync.Mutex
	byTenant map[string]map[string]bool
}

// ReceiversFor returns the receivers a tenant's escalations can be routed to (see
// Route.ReceiversFor), computed once per tenant for this routing file. The map is shared: do not
// modify it.
func (c *Config) ReceiversFor(tenant string) map[string]bool {
	if c == nil || c.Root == nil {
		return map[string]bool{}
	}
	c.reach.mu.Lock()
	defer c.reach.mu.Unlock()
	if got, ok := c.reach.byTenant[tenant]; ok {
		return got
	}
	got := c.Root.ReceiversFor(tenant)
	if c.reach.byTenant == nil {
		c.reach.byTenant = map[string]map[string]bool{}
	}
	if len(c.reach.byTenant) < maxReachCached {
		c.reach.byTenant[tenant] = got
	}
	return got
}

// ReceiversFor returns the receivers of the routes in r's tree that an escalation of tenant
// could be routed to, in one walk of the tree. A route is reachable when its parent is and none
// of its matchers on the tenant label rules tenant out; matchers on other labels could match
// some escalation, so they do not count. The result may name a receiver that a sibling without
// continue: always takes first, never one the tenant's escalations cannot reach.
func (r *Route) ReceiversFor(tenant string) map[string]bool {
	out := map[string]bool{}
	r.reachable(map[string]string{TenantLabel: tenant}, out)
	return out
}

func (r *Route) reachable(labels map[string]string, out map[string]bool) {
	for _, m := range r.Matchers {
		if m.Label == TenantLabel && !m.Matches(labels) {
			return
		}
	}
	out[r.Receiver] = true
	for _, c := range r.Routes {
		c.reachable(labels, out)
	}
}
