package testenv

import (
	"bytes"
	"sync"
)

// LogBuffer is a log sink that goroutines may write to while a test reads it (slog handlers of
// servers and background loops write from their own goroutines).
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
