package filewatch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// A change is applied once; an invalid file is refused; a file replaced by rename is seen.
func TestPoll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conf.yaml")
	write := func(s string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("v1")
	var mu sync.Mutex
	var applied, offered []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Poll(ctx, path, 10*time.Millisecond, []byte("v1"), slog.New(slog.NewTextHandler(io.Discard, nil)), func(data []byte) error {
			mu.Lock()
			defer mu.Unlock()
			offered = append(offered, string(data))
			if string(data) == "broken" {
				return errors.New("invalid")
			}
			applied = append(applied, string(data))
			return nil
		})
	}()
	wait := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := len(offered)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d versions offered, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	write("v2")
	wait(1)
	write("broken")
	wait(2)
	write("v3")
	wait(3)
	time.Sleep(50 * time.Millisecond) // unchanged content is not offered again
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(offered) != 3 || len(applied) != 2 || applied[0] != "v2" || applied[1] != "v3" {
		t.Errorf("offered %q, applied %q", offered, applied)
	}
}
