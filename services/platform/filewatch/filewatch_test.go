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

// A Value refuses to load a broken file, and keeps the last valid content while the file is
// broken.
func TestValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conf.txt")
	parse := func(data []byte) (*string, error) {
		if string(data) == "broken" {
			return nil, errors.New("line 1: broken")
		}
		s := string(data)
		return &s, nil
	}
	if _, err := Load(path, parse); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v, want not exist", err)
	}
	if err := os.WriteFile(path, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, parse); err == nil || err.Error() != path+":\nline 1: broken" {
		t.Fatalf("Load of a broken file: %v, want the path and the problem", err)
	}
	if err := os.WriteFile(path, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := Load(path, parse)
	if err != nil || *v.Load() != "v1" {
		t.Fatalf("Load = %v, %v; want v1", v, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Watch(ctx, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	until := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for *v.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("in force %q, want %q", *v.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, step := range []struct{ write, inForce string }{{"v2", "v2"}, {"broken", "v2"}, {"v3", "v3"}} {
		if err := os.WriteFile(path, []byte(step.write), 0o600); err != nil {
			t.Fatal(err)
		}
		if step.write == "broken" {
			time.Sleep(50 * time.Millisecond) // several polls see it
		}
		until(step.inForce)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Watch returned %v", err)
	}
}
