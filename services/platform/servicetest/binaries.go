package servicetest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BuildServices builds services/<name>/cmd/<name> of this repository into dir. root is the
// repository root relative to the calling test's package directory, where go test runs: go.work
// there picks the local modules.
func BuildServices(dir, root string, names ...string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, filepath.Join(root, "services", n, "cmd", n))
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", strings.Join(names, ", "), err, out)
	}
	return nil
}

// StartBinary runs a built service with its HTTP server on httpAddr, its admin server on a port
// of its own (not the default one a running stack may hold), warnings and errors logged to
// stderr (the test's own stderr when nil) and env on top of the test's environment. It waits
// until /readyz answers 200 and, when the test ends, stops the service with SIGTERM: an exit
// with an error, or none within 15 s, fails the test.
func StartBinary(t testing.TB, path, httpAddr string, stderr io.Writer, env ...string) {
	t.Helper()
	name := filepath.Base(path)
	if stderr == nil {
		stderr = os.Stderr
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "TICKETPULSE_HTTP_ADDR="+httpAddr, "TICKETPULSE_ADMIN_ADDR=127.0.0.1:0", "TICKETPULSE_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	// exited is closed once the process is gone and waitErr then says how it ended: the start-up
	// check and the cleanup both look at it, so neither can miss an early exit.
	exited := make(chan struct{})
	var waitErr error
	var startFailed bool
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if startFailed {
			return
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("stop %s: %v", name, err)
		}
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("%s stopped with error: %v", name, waitErr)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not stop within 15s", name)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			startFailed = true
			t.Fatalf("%s stopped at start: %v", name, waitErr)
		default:
		}
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
