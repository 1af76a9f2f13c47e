package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// maxLine bounds how much of an unterminated line is held before it is written anyway, so a
// child that never prints a newline cannot grow memory without limit.
const maxLine = 64 << 10

// console serialises whole lines from several children onto one writer, so lines never interleave.
type console struct {
	mu     sync.Mutex
	w      io.Writer
	colour bool
	width  int // prefixes are padded to this many characters so messages line up
}

func newConsole(w io.Writer, colour bool, names []string) *console {
	c := &console{w: w, colour: colour}
	for _, n := range names {
		c.width = max(c.width, len(n)+2)
	}
	return c
}

// useColour is true when out is a terminal and NO_COLOR (https://no-color.org) is unset or empty.
func useColour(out *os.File, noColor string) bool {
	if noColor != "" {
		return false
	}
	fi, err := out.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// prefixWriter prefixes every line written to it with "[name]", coloured when the console is.
type prefixWriter struct {
	c      *console
	prefix []byte
	mu     sync.Mutex
	buf    []byte
}

func (c *console) writer(name, colour string) *prefixWriter {
	tag := "[" + name + "]"
	pad := strings.Repeat(" ", max(c.width-len(tag), 0)+1)
	if c.colour && colour != "" {
		tag = "\x1b[" + colour + "m" + tag + "\x1b[0m"
	}
	return &prefixWriter{c: c, prefix: []byte(tag + pad)}
}

// Write emits each complete line at once and keeps a trailing partial line for the next call.
func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	start := 0
	for {
		i := bytes.IndexByte(p.buf[start:], '\n')
		if i < 0 {
			break
		}
		if err := p.emit(p.buf[start : start+i]); err != nil {
			return len(b), err
		}
		start += i + 1
	}
	// Move the partial line to the front so the buffer's array is reused, not regrown.
	p.buf = append(p.buf[:0], p.buf[start:]...)
	if len(p.buf) >= maxLine {
		err := p.emit(p.buf)
		p.buf = p.buf[:0]
		if err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

// Flush writes a last line that had no newline.
func (p *prefixWriter) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) == 0 {
		return nil
	}
	err := p.emit(p.buf)
	p.buf = p.buf[:0]
	return err
}

func (p *prefixWriter) emit(line []byte) error {
	line = bytes.TrimSuffix(line, []byte("\r"))
	out := make([]byte, 0, len(p.prefix)+len(line)+1)
	out = append(append(append(out, p.prefix...), line...), '\n')
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	_, err := p.c.w.Write(out)
	return err
}

// Printf writes one message of tpdev itself.
func (p *prefixWriter) Printf(format string, args ...any) {
	fmt.Fprintf(p, format+"\n", args...)
}
