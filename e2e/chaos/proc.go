package chaos

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Proc is one service process the harness runs and may kill, pause and restart: the same binary,
// addresses and settings each time, its output appended to one log file.
type Proc struct {
	// Name is the instance, such as kpi-2.
	Name     string
	bin      string
	httpAddr string
	env      []string
	logPath  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	paused bool
}

// NewProc describes an instance of the binary bin; Start runs it.
func NewProc(name, bin, httpAddr, logDir string, env []string) *Proc {
	return &Proc{Name: name, bin: bin, httpAddr: httpAddr, env: env, logPath: filepath.Join(logDir, name+".log")}
}

// Start runs the process and waits up to timeout until its /readyz answers 200.
func (p *Proc) Start(timeout time.Duration) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), "TICKETPULSE_HTTP_ADDR="+p.httpAddr, "TICKETPULSE_ADMIN_ADDR=127.0.0.1:0", "TICKETPULSE_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.paused = cmd, exited, false
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	return p.waitReady(exited, timeout)
}

func (p *Proc) waitReady(exited chan struct{}, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s stopped at start: %v (log %s)", p.Name, p.exitErr(), p.logPath)
		default:
		}
		if resp, err := c.Get("http://" + p.httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s (log %s)", p.Name, timeout, p.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *Proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *Proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return errors.New(p.Name + " not started")
	}
	return cmd.Process.Signal(sig)
}

// Kill ends the process with SIGKILL, as a crash would, and waits until it is gone.
func (p *Proc) Kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.Name, err)
	}
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	<-exited
	return nil
}

// Pause stops the process (SIGSTOP) and Resume lets it go on (SIGCONT).
func (p *Proc) Pause() error {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause %s: %w", p.Name, err)
	}
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	return nil
}

func (p *Proc) Resume() error {
	if err := p.signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("resume %s: %w", p.Name, err)
	}
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	return nil
}

// Alive says whether the process is still running; err is how it ended otherwise.
func (p *Proc) Alive() (bool, error) {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return false, p.exitErr()
	default:
		return true, nil
	}
}

// Stop ends the process as an orchestrator would: SIGCONT (a paused process cannot stop),
// SIGTERM, and SIGKILL after grace. It says how the process ended: an error for a non-zero exit
// or one that needed SIGKILL. A process that is already gone returns how it ended.
func (p *Proc) Stop(grace time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return p.exitErr()
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if err := p.exitErr(); err != nil {
			return fmt.Errorf("%s stopped with %w", p.Name, err)
		}
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s did not stop within %s of SIGTERM", p.Name, grace)
	}
}

// LogPath is the file the process writes its log to.
func (p *Proc) LogPath() string { return p.logPath }
