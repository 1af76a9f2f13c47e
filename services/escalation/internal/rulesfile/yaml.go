package rulesfile

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

// TenantYAML is the rules file holding only tenant's rules, as GetRules hands it out and
// SimulateRules takes it back: the tenant's part of c, or "tenants: {<tenant>: {}}" for a tenant
// c has no rules for (nothing escalates for it).
func (c *Config) TenantYAML(tenant string) []byte {
	if t, ok := c.Tenant(tenant); ok && len(t.YAML) > 0 {
		return t.YAML
	}
	return []byte("tenants:\n  " + tenant + ": {}\n")
}

// tenantYAML writes the tenant's subtree, exactly as the file has it (styles, quoting and
// comments included), under a tenants: key of its own. The subtree is copied rather than
// re-encoded from the loaded rules, so the output holds what was written (a calendar no policy
// uses, a percentage written as 80%), and loading it gives the same rules by construction.
// Aliases are expanded: the anchor they name may sit in another tenant's part.
func tenantYAML(key, val *yaml.Node) []byte {
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "tenants"},
		{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: key.Value, HeadComment: key.HeadComment, LineComment: key.LineComment},
			expand(val),
		}},
	}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil
	}
	if err := enc.Close(); err != nil {
		return nil
	}
	return buf.Bytes()
}

// expand deep-copies n with every alias replaced by a copy of what it names, and no anchors.
// Decode refused a document whose expansion is too large, so the copy is bounded; an alias
// inside what it names (a cycle, which no valid rules file holds) is cut off as null.
func expand(n *yaml.Node) *yaml.Node { return expandFrom(n, map[*yaml.Node]bool{}) }

func expandFrom(n *yaml.Node, open map[*yaml.Node]bool) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if open[n] {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	open[n] = true
	defer delete(open, n)
	c := *n
	c.Anchor, c.Alias, c.Line, c.Column = "", nil, 0, 0
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = expandFrom(child, open)
	}
	return &c
}
