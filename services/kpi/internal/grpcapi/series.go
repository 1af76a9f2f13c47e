package grpcapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
)

// Limits of ListKpiSeries.
const (
	// MaxSeriesPoints bounds the points of one page, so a page's reply and the totals merged for
	// it stay a few tens of megabytes whatever the window and granularity.
	MaxSeriesPoints = 100_000
	MaxSeriesIDs    = 1000
	// MaxSeriesKpis bounds the kpis a request names: a chart draws a few figures, and a caller
	// that wants most of them is served as well by every field (an empty kpis).
	MaxSeriesKpis = 16
)

var seriesKinds = map[ticketpulsev1.ScopeKind]bucket.Kind{
	ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT:      bucket.Agent,
	ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM:       bucket.Team,
	ticketpulsev1.ScopeKind_SCOPE_KIND_UNASSIGNED: bucket.Unassigned,
	ticketpulsev1.ScopeKind_SCOPE_KIND_QUEUE:      bucket.Queue,
}

// Granularities maps the API's granularities to the window package's.
var Granularities = map[ticketpulsev1.Granularity]window.Granularity{
	ticketpulsev1.Granularity_GRANULARITY_HOUR:  window.Hour,
	ticketpulsev1.Granularity_GRANULARITY_DAY:   window.Day,
	ticketpulsev1.Granularity_GRANULARITY_WEEK:  window.Week,
	ticketpulsev1.Granularity_GRANULARITY_MONTH: window.Month,
}

// ListKpiSeries returns the KPIs of every period of the window for a page of agents, teams or queues,
// or for the unassigned figures. A page is read with one pipelined read of every series' every
// period (one query per point; periods that share their span share their cover), so its cost
// grows with its points, never with round trips.
func (s *Server) ListKpiSeries(ctx context.Context, req *ticketpulsev1.ListKpiSeriesRequest) (*ticketpulsev1.ListKpiSeriesResponse, error) {
	const rpc = "ListKpiSeries"
	var v violations
	v.Tenant(req.GetTenant())
	rw := v.window(req.GetWindow(), s.now())
	kind, kindOK := seriesKinds[req.GetScope()]
	if !kindOK {
		v.Add("scope", fmt.Sprintf("%s: want SCOPE_KIND_AGENT, SCOPE_KIND_TEAM, SCOPE_KIND_QUEUE or SCOPE_KIND_UNASSIGNED", req.GetScope()))
	}
	gran, ok := Granularities[req.GetGranularity()]
	if !ok {
		v.Add("granularity", fmt.Sprintf("%s: want GRANULARITY_HOUR, GRANULARITY_DAY, GRANULARITY_WEEK or GRANULARITY_MONTH", req.GetGranularity()))
	}
	ids := req.GetIds()
	switch {
	case len(ids) > MaxSeriesIDs:
		v.Add("ids", fmt.Sprintf("%d ids, at most %d allowed", len(ids), MaxSeriesIDs))
	case len(ids) > 0 && kind == bucket.Unassigned && kindOK:
		v.Add("ids", "must be empty for SCOPE_KIND_UNASSIGNED: it is one series")
	default:
		seen := make(map[string]int, len(ids))
		for i, id := range ids {
			field := fmt.Sprintf("ids[%d]", i)
			v.ID(field, id, true)
			if j, dup := seen[id]; dup {
				v.Add(field, fmt.Sprintf("repeats ids[%d]", j))
			}
			seen[id] = i
		}
	}
	team := req.GetTeamId()
	v.ID("team_id", team, false)
	switch {
	case team != "" && kindOK && kind != bucket.Agent:
		v.Add("team_id", "only for SCOPE_KIND_AGENT")
	case team != "" && len(ids) > 0:
		v.Add("team_id", "must be empty when ids are given")
	}
	fields := v.kpiFields(req.GetKpis())
	size := v.PageSize(req.GetPageSize(), DefaultPageSize, MaxPageSize)
	if err := v.Err(); err != nil {
		return nil, err
	}
	fp := seriesFingerprint(req)
	offset := 0
	if req.GetPageToken() != "" {
		tok, err := decodeToken(req.GetPageToken(), fp)
		if errors.Is(err, errForeignToken) {
			err = errors.New("was issued for a series request with other parameters (tenant, scope, ids, team_id, window, granularity or kpis)")
		}
		if err != nil {
			v.Add("page_token", err.Error())
			return nil, v.Err()
		}
		offset = tok.Offset
		rw.FromHour, rw.ToHour, rw.AlignedToHour, rw.Note = tok.FromHour, tok.ToHour, tok.Aligned, tok.Note
	}
	periods, shown, err := window.Periods(rw, gran)
	if err != nil {
		v.Add(window.FieldTimeZone, err.Error())
		return nil, v.Err()
	}
	// The series a page can hold: known before any read unless the agents or teams are listed.
	held := size
	switch {
	case kind == bucket.Unassigned:
		held = 1
	case len(ids) > 0:
		held = min(size, max(len(ids)-offset, 1))
	}
	if fit := MaxSeriesPoints / len(periods); held > fit {
		v.Add("page_size", fmt.Sprintf("a page of %d series of %d %s points holds %d points, more than %d: at most %d series fit a page",
			held, len(periods), gran, held*len(periods), MaxSeriesPoints, fit))
		return nil, v.Err()
	}
	ks, err := s.keyspace(ctx, rpc, req.GetTenant())
	if err != nil {
		return nil, err
	}
	all := ids
	switch {
	case kind == bucket.Unassigned:
		all = []string{""}
	case len(ids) > 0:
	case kind == bucket.Agent:
		all, err = s.r.Agents(ctx, ks, team, rw.FromHour, rw.ToHour)
	case kind == bucket.Queue:
		all, err = s.r.Queues(ctx, ks, rw.FromHour, rw.ToHour)
	default:
		all, err = s.r.Teams(ctx, ks, rw.FromHour, rw.ToHour)
	}
	if err != nil {
		return nil, s.readErr(ctx, rpc, req.GetTenant(), err)
	}
	page := all[min(offset, len(all)):min(offset+size, len(all))]
	resp := &ticketpulsev1.ListKpiSeriesResponse{Window: shown.Proto(), Granularity: req.GetGranularity()}
	if len(page) == 0 {
		return resp, nil
	}
	qs := make([]query.Query, 0, len(page)*len(periods))
	for _, id := range page {
		for _, p := range periods {
			qs = append(qs, query.Query{Scope: bucket.Scope{Kind: kind, ID: id}, FromHour: p.FromHour, ToHour: p.ToHour, Fields: fields})
		}
	}
	totals, err := s.r.Read(ctx, ks, qs)
	if err != nil {
		return nil, s.readErr(ctx, rpc, req.GetTenant(), err)
	}
	// The period bounds are shared by every series of the page.
	bounds := make([]*timestamppb.Timestamp, len(periods)+1)
	for i, p := range periods {
		bounds[i] = timestamppb.New(window.HourTime(p.FromHour))
	}
	bounds[len(periods)] = timestamppb.New(window.HourTime(periods[len(periods)-1].ToHour))
	resp.Series = make([]*ticketpulsev1.KpiSeries, len(page))
	for i, id := range page {
		pts := make([]*ticketpulsev1.KpiPoint, len(periods))
		for j := range periods {
			pts[j] = &ticketpulsev1.KpiPoint{From: bounds[j], To: bounds[j+1], Kpis: query.ToProtoFields(totals[i*len(periods)+j], fields)}
		}
		resp.Series[i] = &ticketpulsev1.KpiSeries{ScopeId: id, Points: pts}
	}
	if next := offset + len(page); next < len(all) {
		resp.NextPageToken = encodeToken(pageToken{
			Offset: next, FromHour: rw.FromHour, ToHour: rw.ToHour, Aligned: rw.AlignedToHour, Note: rw.Note, Fingerprint: fp,
		})
	}
	return resp, nil
}

// kpiFields reads a series request's kpis: the Kpis fields by proto name, each once, at most
// MaxSeriesKpis; none is every field.
func (v *violations) kpiFields(names []string) query.Fields {
	if len(names) == 0 {
		return query.AllFields
	}
	if len(names) > MaxSeriesKpis {
		v.Add("kpis", fmt.Sprintf("%d names, at most %d allowed (none asks for every field)", len(names), MaxSeriesKpis))
		return query.AllFields
	}
	var fields query.Fields
	seen := make(map[string]int, len(names))
	for i, name := range names {
		field := fmt.Sprintf("kpis[%d]", i)
		f, ok := query.FieldNamed(name)
		switch {
		case !ok:
			shown := name
			if len(shown) > 64 { // a name is echoed, not a body
				shown = strings.ToValidUTF8(shown[:64], "") + "…"
			}
			v.Add(field, fmt.Sprintf("%q is not a field of Kpis: want a proto field name such as \"first_response\" or \"csat_percent\"", shown))
		case seen[name] > 0:
			v.Add(field, fmt.Sprintf("%q repeats kpis[%d]", name, seen[name]-1))
		default:
			seen[name] = i + 1
			fields |= f
		}
	}
	return fields
}

// seriesFingerprint identifies the parameters the pages of a series request must share; the
// page size may change between pages.
func seriesFingerprint(req *ticketpulsev1.ListKpiSeriesRequest) string {
	pinned := proto.CloneOf(req)
	pinned.PageSize, pinned.PageToken = 0, ""
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(pinned) // a message always marshals
	sum := sha256.Sum256(append([]byte("series\x00"), b...))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}
