package export

import (
	"context"
	"time"
)

// Kind is the type of a column's values.
type Kind int

// Kinds of columns: text (escaped against formula injection in CSV), an instant (RFC 3339 with
// the export's offset in CSV, a UTC-adjusted millisecond timestamp in Parquet), an integer and a
// floating-point number.
const (
	Text Kind = iota + 1
	Instant
	Int
	Float
)

// Column is one column of an export: a stable snake_case name, its kind, and what it means
// (docs/exports.md lists the same).
type Column struct {
	Name string
	Kind Kind
}

// Value is one cell; the field of its column's kind is set.
type Value struct {
	S string
	T time.Time
	I int64
	F float64
}

// Query is what an export request asks for, checked by ParseQuery.
type Query struct {
	Tenant string
	// From and To bound the window [From, To); Rolling, when set, names a rolling window instead.
	From, To    time.Time
	Rolling     string
	TimeZone    string
	Granularity string
	// TeamID restricts an agents export to the agents credited for that team.
	TeamID string
}

// Source is one kind of export: its columns and its rows. A source reads its data page by page
// and hands each row on before reading the next page, so an export holds one page in memory
// whatever its range. The agents and teams exports are series of ListKpiSeries; a per-ticket
// export plugs in as another Source.
type Source interface {
	Columns() []Column
	// Rows calls emit with every row in order, one Value per column in Columns' order. The row
	// is reused once emit returns. Rows returns emit's error as it is; an error before the first
	// row is the request's (see Problem).
	Rows(ctx context.Context, q Query, emit func(row []Value) error) error
}
