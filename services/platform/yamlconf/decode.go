package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxExpandedNodes bounds the size of a document with its aliases expanded. Loaders walk aliased
// nodes once per reference, so a few lines of nested aliases (a "billion laughs") would
// otherwise keep them busy for ever; real configuration files stay far below it.
const MaxExpandedNodes = 1 << 20

// Decode parses data as a single YAML document whose root must be a mapping, and returns that
// root with aliases resolved, or nil after recording why it cannot. want describes the root for
// messages ("a mapping with a tenants: key"), and what names the file ("the tenants file").
// A second document is a problem too, but the first is still returned so its problems show.
func (l *Loader) Decode(data []byte, want, what string) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.AddLine(1, "the file is empty; want "+want)
		} else {
			l.Problems = append(l.Problems, SyntaxProblem(l.File, err, data))
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		l.Addf(&extra, "a second YAML document; %s holds one", what)
	case !errors.Is(err, io.EOF):
		l.Problems = append(l.Problems, SyntaxProblem(l.File, err, data))
	}
	if len(doc.Content) == 0 {
		l.AddLine(1, "the file is empty; want "+want)
		return nil
	}
	if expandedSize(&doc, map[*yaml.Node]int{}) > MaxExpandedNodes {
		l.AddLine(1, fmt.Sprintf("the file's aliases expand to more than %d values", MaxExpandedNodes))
		return nil
	}
	root := Resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		l.Addf(root, "want %s, not %s", want, Describe(root))
		return nil
	}
	return root
}

// expandedSize counts the nodes of n with every alias replaced by what it names, saturating
// above MaxExpandedNodes. Sizes are memoised, so the count takes time linear in the file; a
// node is counted as 0 while its own size is being computed, which ends alias cycles.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.AliasNode {
		return expandedSize(n.Alias, memo)
	}
	if size, ok := memo[n]; ok {
		return size
	}
	memo[n] = 0
	size := 1
	for _, c := range n.Content {
		size = min(size+expandedSize(c, memo), MaxExpandedNodes+1)
	}
	memo[n] = size
	return size
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

// SyntaxProblem turns a YAML parse error into a Problem with the line it is on. The library
// leaves the line out when it is the first one, and for an unknown anchor, whose line is found
// by looking for the alias in data.
func SyntaxProblem(file string, err error, data []byte) Problem {
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
	return Problem{File: file, Line: max(line, 1), Reason: "invalid YAML: " + msg}
}
