package export

import (
	"encoding/csv"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// encoder writes rows in one file format.
type encoder interface {
	write(row []Value) error
	// close ends the file; nothing may be written after it.
	close() error
}

// Formats are the file formats, by file extension, with their media types.
var Formats = map[string]string{
	"csv":     "text/csv; charset=utf-8; header=present",
	"parquet": "application/vnd.apache.parquet",
}

func newEncoder(format string, w io.Writer, cols []Column) encoder {
	if format == "parquet" {
		return newParquetEncoder(w, cols)
	}
	return newCSVEncoder(w, cols)
}

// csvEncoder writes RFC 4180 CSV: a header row, CRLF line ends, fields quoted where needed.
type csvEncoder struct {
	w       *csv.Writer
	cols    []Column
	record  []string
	scratch []byte
	header  bool
}

func newCSVEncoder(w io.Writer, cols []Column) *csvEncoder {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	return &csvEncoder{w: cw, cols: cols, record: make([]string, len(cols))}
}

func (e *csvEncoder) writeHeader() error {
	e.header = true
	for i, c := range e.cols {
		e.record[i] = c.Name
	}
	return e.w.Write(e.record)
}

func (e *csvEncoder) write(row []Value) error {
	if !e.header {
		if err := e.writeHeader(); err != nil {
			return err
		}
	}
	for i, c := range e.cols {
		v := &row[i]
		if v.Null && c.Optional {
			e.record[i] = ""
			continue
		}
		switch c.Kind {
		case Text:
			e.record[i] = SafeText(v.S)
		case Bool:
			e.record[i] = strconv.FormatBool(v.B)
		case Instant:
			e.record[i] = v.T.Format(time.RFC3339)
		case Int:
			e.record[i] = strconv.FormatInt(v.I, 10)
		case Float:
			e.scratch = strconv.AppendFloat(e.scratch[:0], v.F, 'f', -1, 64)
			e.record[i] = string(e.scratch)
		}
	}
	return e.w.Write(e.record)
}

func (e *csvEncoder) close() error {
	if !e.header {
		if err := e.writeHeader(); err != nil {
			return err
		}
	}
	e.w.Flush()
	return e.w.Error()
}

// SafeText keeps a spreadsheet from taking a text cell for a formula (CSV injection): a cell
// starting with =, +, -, @, a tab or a carriage return is prefixed with a single quote, which
// spreadsheets show as text and do not evaluate. Ids are helpdesk data, so any of them can.
func SafeText(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// parquetEncoder writes a Parquet file with one column per export column, in order,
// zstd-compressed, in row groups of at most parquetRowGroup rows, so memory stays bounded
// whatever the export's length.
type parquetEncoder struct {
	w   *parquet.Writer
	row parquet.Row
	// cols are the export's columns; each one's index in the schema is its position.
	cols []Column
}

// parquetRowGroup bounds the rows the writer holds before it writes them out: about 25 MB of
// live heap with the series columns (BenchmarkEncode), four times that at 20,000.
const parquetRowGroup = 5_000

func newParquetEncoder(w io.Writer, cols []Column) *parquetEncoder {
	schema := parquet.NewSchema("kpis", ParquetSchema(cols))
	return &parquetEncoder{
		w:    parquet.NewWriter(w, schema, parquet.Compression(&zstd.Codec{}), parquet.MaxRowsPerRowGroup(parquetRowGroup)),
		row:  make(parquet.Row, len(cols)),
		cols: cols,
	}
}

func (e *parquetEncoder) write(row []Value) error {
	for i, c := range e.cols {
		v := &row[i]
		if c.Optional && v.Null {
			e.row[i] = parquet.NullValue().Level(0, 0, i)
			continue
		}
		var pv parquet.Value
		switch c.Kind {
		case Bool:
			pv = parquet.BooleanValue(v.B)
		case Text:
			pv = parquet.ByteArrayValue([]byte(v.S))
		case Instant:
			pv = parquet.Int64Value(v.T.UnixMilli())
		case Int:
			pv = parquet.Int64Value(v.I)
		case Float:
			pv = parquet.DoubleValue(v.F)
		}
		def := 0
		if c.Optional {
			def = 1
		}
		e.row[i] = pv.Level(0, def, i)
	}
	if _, err := e.w.WriteRows([]parquet.Row{e.row}); err != nil {
		return fmt.Errorf("write parquet row: %w", err)
	}
	return nil
}

func (e *parquetEncoder) close() error { return e.w.Close() }

// ParquetSchema is the schema of cols: text as UTF-8 strings, instants as UTC-adjusted
// millisecond timestamps, integers as INT64, numbers as DOUBLE, booleans as BOOLEAN, required
// unless the column is Optional, in cols' order.
func ParquetSchema(cols []Column) parquet.Node {
	g := orderedGroup{Group: parquet.Group{}}
	for _, c := range cols {
		var n parquet.Node
		switch c.Kind {
		case Text:
			n = parquet.String()
		case Instant:
			n = parquet.Timestamp(parquet.Millisecond)
		case Int:
			n = parquet.Leaf(parquet.Int64Type)
		case Bool:
			n = parquet.Leaf(parquet.BooleanType)
		default:
			n = parquet.Leaf(parquet.DoubleType)
		}
		if c.Optional {
			n = parquet.Optional(n)
		} else {
			n = parquet.Required(n)
		}
		g.Group[c.Name] = n
		g.fields = append(g.fields, &namedField{Node: n, name: c.Name})
	}
	return g
}

// orderedGroup is a parquet group whose columns keep the order they were added in: the
// library's Group sorts them by name, and an export's first columns are its keys.
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g orderedGroup) Fields() []parquet.Field { return g.fields }

// namedField is a column of an orderedGroup.
type namedField struct {
	parquet.Node
	name string
}

func (f *namedField) Name() string { return f.name }

// Value finds the field in a map row; rows are written as parquet.Row, so this serves only
// the library's reflection paths.
func (f *namedField) Value(base reflect.Value) reflect.Value {
	if base.Kind() != reflect.Map {
		return reflect.Value{}
	}
	return base.MapIndex(reflect.ValueOf(f.name))
}
