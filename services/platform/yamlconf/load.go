package yamlconf

import (
	"fmt"
	"os"
)

// LoadFile reads the file at path and parses it; what names the file in a read error ("read
// rules file: ..."). Parsing stays its own function because a service that reloads the file
// parses the bytes it already read to see whether they changed.
func LoadFile[T any](path, what string, parse func(data []byte) (T, error)) (T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("read %s: %w", what, err)
	}
	return parse(data)
}

// Checked returns cfg, built by walking a file with l, when the walk found no problem, and l's
// problems otherwise: a half-built config never leaves its loader.
func Checked[T any](cfg T, l *Loader) (T, error) {
	if err := l.Err(); err != nil {
		var zero T
		return zero, err
	}
	return cfg, nil
}
