package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// proc is a child process whose output goes through prefix writers.
type proc struct {
	name string
	cmd  *exec.Cmd
	outs []*prefixWriter
	done chan struct{} // closed once the process has exited and its output is flushed
	err  error         // what Wait returned; read only after done

	reported bool // its exit was already told to the user
}

// startProc starts cmd with its stdout and stderr prefixed, in its own process group so that a
// Ctrl-C in the terminal reaches only tpdev, which then stops the children in order.
func startProc(name string, cmd *exec.Cmd, out *prefixWriter, errOut *prefixWriter) (*proc, error) {
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.SysProcAttr = childAttr()
	// A grandchild holding the pipes open must not keep Wait from returning.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, outs: []*prefixWriter{out, errOut}, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		for _, w := range p.outs {
			_ = w.Flush()
		}
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace, then kills. It reports a kill or a failed exit.
func (p *proc) stop(grace time.Duration, force <-chan struct{}) error {
	if p.exited() {
		return p.exitErr()
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.exitErr()
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v and was killed", p.name, grace)
	case <-force:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s killed on a second interrupt", p.name)
	}
}

// exitErr treats an exit caused by our own SIGTERM like a clean one.
func (p *proc) exitErr() error {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.name, p.err)
	}
	return nil
}
