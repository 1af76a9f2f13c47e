package yamlconf

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// Secrets are never written in a configuration file: a file refers to each with {env: NAME}
// or {file: PATH}. Nothing here quotes a secret it read, nor a scalar written in place of a
// reference, since that scalar is most likely a pasted secret.

// MaxSecretFile is the default bound on a secret file's size.
const MaxSecretFile = 64 << 10

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// SecretRefs says how the secret references of one file are resolved.
type SecretRefs struct {
	// Dir is where relative {file: PATH} references are; usually the file's directory.
	Dir string
	// Getenv resolves {env: NAME} references; nil means os.Getenv.
	Getenv func(string) string
	// MaxFile bounds a secret file's size; 0 means MaxSecretFile.
	MaxFile int64
}

// Secret is a secret read from its reference.
type Secret struct {
	// Value is the secret; a file's final newline is not part of it.
	Value []byte
	// From says where it came from, for messages: "environment variable NAME", "file PATH".
	From string
}

// Secret resolves {env: NAME} or {file: PATH}; an unset or empty variable and an empty file are
// problems.
func (l *Loader) Secret(n *yaml.Node, path string, refs SecretRefs) (Secret, bool) {
	n = Resolve(n)
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && !IsNull(n) {
			l.Addf(n, "%s: secrets are never written in this file; use {env: NAME} or {file: PATH}", path)
		} else {
			l.Addf(n, "%s: want {env: NAME} or {file: PATH}, not %s", path, Describe(n))
		}
		return Secret{}, false
	}
	ps, _ := l.QuietPairs(n, path)
	var env, file *Pair
	for i, p := range ps {
		switch p.Key.Value {
		case "env":
			env = &ps[i]
		case "file":
			file = &ps[i]
		case "value":
			l.Addf(p.Key, "%s: secrets are never written in this file; use {env: NAME} or {file: PATH}", path)
		default:
			l.Addf(p.Key, "%s: unknown key (allowed: env, file)", path)
		}
	}
	switch {
	case env != nil && file != nil:
		l.Addf(file.Key, "%s: set env: or file:, not both", path)
	case env != nil:
		return l.envSecret(env.Val, path+".env", refs)
	case file != nil:
		return l.fileSecret(file.Val, path+".file", refs)
	case len(ps) == 0:
		l.Addf(n, "%s: want {env: NAME} or {file: PATH}", path)
	}
	return Secret{}, false
}

// SecretList reads a non-empty list of secret references and calls each with every secret it
// resolves. at is the list's mapping entry: an empty list is reported at its key.
func (l *Loader) SecretList(at Pair, path string, refs SecretRefs, each func(item *yaml.Node, path string, s Secret)) {
	n := Resolve(at.Val)
	if IsNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		l.Addf(at.Key, "%s: needs at least one secret", path)
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.Addf(n, "%s: want a list of {env: NAME} or {file: PATH}, not %s", path, Describe(n))
		return
	}
	for i, item := range n.Content {
		ipath := Index(path, i)
		if s, ok := l.Secret(item, ipath, refs); ok {
			each(item, ipath, s)
		}
	}
}

func (l *Loader) envSecret(n *yaml.Node, path string, refs SecretRefs) (Secret, bool) {
	name, ok := l.Str(n, path)
	if !ok {
		return Secret{}, false
	}
	if !envName.MatchString(name) {
		l.Addf(n, "%s: %q is not an environment variable name", path, name)
		return Secret{}, false
	}
	getenv := refs.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	v := getenv(name)
	if v == "" {
		l.Addf(n, "%s: environment variable %s is unset or empty", path, name)
		return Secret{}, false
	}
	return Secret{Value: []byte(v), From: "environment variable " + name}, true
}

func (l *Loader) fileSecret(n *yaml.Node, path string, refs SecretRefs) (Secret, bool) {
	name, ok := l.Str(n, path)
	if !ok {
		return Secret{}, false
	}
	full := name
	if !filepath.IsAbs(full) {
		full = filepath.Join(refs.Dir, full)
	}
	limit := refs.MaxFile
	if limit <= 0 {
		limit = MaxSecretFile
	}
	// A secret is short; a device, a pipe or a huge file is the wrong path, and reading it
	// could hang the start.
	if fi, err := os.Stat(full); err == nil && (!fi.Mode().IsRegular() || fi.Size() > limit) {
		l.Addf(n, "%s: %s is not a regular file of at most %d bytes", path, full, limit)
		return Secret{}, false
	}
	b, err := os.ReadFile(full)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.Addf(n, "%s: reading secret file %s: %v", path, full, err)
		return Secret{}, false
	}
	// Editors and `echo` end files with a newline that is not part of the secret.
	if t, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b = bytes.TrimSuffix(t, []byte("\r"))
	}
	if len(b) == 0 {
		l.Addf(n, "%s: secret file %s is empty", path, full)
		return Secret{}, false
	}
	return Secret{Value: b, From: "file " + full}, true
}
