package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxLine bounds one line of a replay file: ingest takes at most 4 MiB in a request, and a
// canonical event is a few hundred bytes; anything far longer is not an event.
const maxLine = 1 << 20

// errNoID refuses a line without an id: ingest deduplicates by it, which is what makes a batch
// resent after a crash count once.
var errNoID = errors.New(`no "id": every event needs one, stable across runs (ingest deduplicates by it, so a batch resent after a crash counts once)`)

// parseLine checks one line of a replay file: a single JSON object with a non-empty string id.
// The rest of the event is ingest's to judge; its answer names the line. blank is a line of only
// white space, which is skipped.
func parseLine(line []byte) (id string, blank bool, err error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return "", true, nil
	}
	if len(line) > maxLine {
		return "", false, fmt.Errorf("longer than %d bytes", maxLine)
	}
	if line[0] != '{' {
		return "", false, errors.New("not a JSON object: want one canonical event per line")
	}
	var ev struct {
		ID json.RawMessage `json:"id"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&ev); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "", false, fmt.Errorf("malformed JSON at byte %d: %v", se.Offset, se)
		}
		return "", false, fmt.Errorf("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", false, errors.New("more than one JSON value on the line")
	}
	if len(ev.ID) == 0 || string(ev.ID) == "null" {
		return "", false, errNoID
	}
	if err := json.Unmarshal(ev.ID, &id); err != nil {
		return "", false, errors.New(`"id": must be a JSON string`)
	}
	if id == "" {
		return "", false, errNoID
	}
	return id, false, nil
}

// lineReader reads a file line by line and knows the byte offset after each line, which is
// what the replay state records. A line over maxLine is returned truncated with tooLong set,
// the rest of it skipped, so one bad line cannot take the whole file into memory.
type lineReader struct {
	r      *bufio.Reader
	offset int64 // bytes consumed
	number int   // lines consumed
}

func newLineReader(r io.Reader, offset int64, number int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), offset: offset, number: number}
}

// next returns the next line without its newline, its raw length (newline included) and
// whether it was longer than maxLine; io.EOF after the last one.
func (l *lineReader) next(buf []byte) (line []byte, raw int, tooLong bool, err error) {
	buf = buf[:0]
	for {
		chunk, err := l.r.ReadSlice('\n')
		raw += len(chunk)
		if !tooLong && len(buf)+len(chunk) <= maxLine+1 {
			buf = append(buf, chunk...)
		} else {
			tooLong = true
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == nil, errors.Is(err, io.EOF) && raw > 0:
			l.offset += int64(raw)
			l.number++
			return bytes.TrimSuffix(buf, []byte("\n")), raw, tooLong, nil
		default:
			return nil, 0, false, err
		}
	}
}
