package export

import (
	"context"
	"time"
)

// Kind is the type of a column's values.
type Kind int

// Kinds of columns: text (escaped against formula injection in CSV), an instant (RFC 3339 with
// the export's offset in CSV, a UTC-adjusted millisecond timestamp in Parquet), an integer, a
// floating-point number and a boolean (true or false in CSV).
const (
	Text Kind = iota + 1
	Instant
	Int
	Float
	Bool
)

// Column is one column of an export: a stable snake_case name and its kind (docs/exports.md
// says what each means). An Optional column may hold no value: an empty CSV cell, a Parquet null.
type Column struct {
	Name     string
	Kind     Kind
	Optional bool
}

// Value is one cell; the field of its column's kind is set, or Null in an Optional column.
type Value struct {
	S    string
	T    time.Time
	I    int64
	F    float64
	B    bool
	Null bool
}

// Query is what an export request asks for, checked by ParseQuery.
type Query struct {
	Tenant string
	// From and To bound the window [From, To); Rolling, when set, names a rolling window instead.
	From, To    time.Time
	Rolling     string
	TimeZone    string
	Granularity string
	// TeamID restricts an agents export to the agents credited for that team, a tickets export
	// to that team's tickets; AgentID a tickets export to that agent's.
	TeamID, AgentID string
	// Tickets filters a tickets export.
	Tickets TicketFilter
}

// TicketFilter is the filter of a tickets export, as ListTicketKpis takes it; nil or false
// filters nothing.
type TicketFilter struct {
	MinFirstResponseSeconds, MinResolutionSeconds *float64
	MaxRating, MinReopens                         *int32
	SLABreached, Unresolved                       bool
}

// Source is one kind of export: its columns and its rows. A source reads its data page by page
// and hands each row on before reading the next page, so an export holds one page in memory
// whatever its range. The agents and teams exports are series of ListKpiSeries, the tickets
// export the rows of ListTicketKpis.
type Source interface {
	Columns() []Column
	// Params are the query parameters the export takes (of ParseQuery's); another is refused.
	Params() []string
	// Rows calls emit with every row in order, one Value per column in Columns' order. The row
	// is reused once emit returns. Rows returns emit's error as it is; an error before the first
	// row is the request's (see Problem).
	Rows(ctx context.Context, q Query, emit func(row []Value) error) error
}
