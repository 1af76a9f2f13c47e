// Package salesforce maps Salesforce Service Cloud Case and CaseComment changes onto canonical
// ticket events. It reads two kinds of delivery, told apart by their Content-Type:
//
//   - Outbound Messages (text/xml): a SOAP 1.1 envelope of notifications, each a snapshot of one
//     record (an sObject of xsi:type sf:Case or sf:CaseComment) as a workflow rule or flow saw
//     it. Salesforce retries until it reads a SOAP acknowledgement (Acknowledge). A snapshot does
//     not say what changed, so an edited Case yields its status, owner and priority as of the
//     edit; the KPIs count transitions and distinct assignments, so a repeat changes nothing.
//   - Flow callouts (application/json), sent by the Apex action of deploy/webhooks/salesforce:
//     the record as Apex serialises it and, for an update, the record before it, so they say
//     exactly what changed, and who wrote a comment (a portal customer or an agent).
//
// See docs/crms.md for the mapping table and its sources.
package salesforce

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "salesforce"

// Skip reasons, the metric labels of what a delivery deliberately does not map.
const (
	// SkipUnsupportedObject: an sObject other than Case and CaseComment.
	SkipUnsupportedObject = "unsupported_object"
	// SkipUnmappedStatus: a Case Status neither the tenant's statuses: nor the defaults know,
	// without IsClosed to fall back on.
	SkipUnmappedStatus = "unmapped_status"
	// SkipUnmappedPriority: a Case Priority other than the standard picklist's.
	SkipUnmappedPriority = "unmapped_priority"
	// SkipDeleted: a record in the recycle bin (IsDeleted).
	SkipDeleted = "deleted"
	// SkipUnchanged: a Flow callout for an update that changed none of the mapped fields.
	SkipUnchanged = "unchanged"
)

// MaxNotifications is the most notifications one Outbound Message holds (Salesforce sends up
// to 100); more is not a Salesforce message.
const MaxNotifications = 100

// nsOutbound is the namespace of an Outbound Message's notifications.
const nsOutbound = "http://soap.sforce.com/2005/09/outbound"

// Ack is the answer Salesforce needs to stop retrying an Outbound Message (the
// notificationsResponse of the Outbound Messaging WSDL).
const Ack = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>
`

// Adapter maps Salesforce deliveries with one tenant's status mapping.
type Adapter struct {
	statuses map[string]string
}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the Salesforce adapter with the default status mapping.
func New() *Adapter { return &Adapter{} }

// Source returns "salesforce".
func (*Adapter) Source() string { return Source }

// For returns the adapter for a tenant whose statuses: setting maps its own Case Status values.
func (*Adapter) For(sc *tenants.SourceConfig) adapter.Adapter { return &Adapter{statuses: sc.Statuses} }

// CheckContentType accepts Outbound Messages (text/xml) and Flow callouts (application/json),
// both UTF-8.
func (*Adapter) CheckContentType(v string) string {
	const want = "Content-Type must be text/xml (Outbound Messages) or application/json (Flow callouts)"
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "text/xml" && mt != "application/xml" && mt != "application/json" {
		return want
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "charset must be utf-8"
	}
	return ""
}

// Acknowledge answers an Outbound Message with the SOAP acknowledgement; a Flow callout keeps
// the JSON answer.
func (*Adapter) Acknowledge(h http.Header) (contentType string, body []byte, ok bool) {
	if !verify.IsXML(h.Get("Content-Type")) {
		return "", nil, false
	}
	return "text/xml; charset=utf-8", []byte(Ack), true
}

// Map turns one delivery into events.
func (a *Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	if verify.IsXML(d.Header.Get("Content-Type")) {
		return a.mapOutbound(d.Body)
	}
	return a.mapFlow(d.Body)
}

// envelope is an Outbound Message. Field names without a namespace match the element in any,
// as Salesforce prefixes the sObject's fields (sf:Id) but not the notification's.
type envelope struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Body    struct {
		Notifications []notifications `xml:"http://soap.sforce.com/2005/09/outbound notifications"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

type notifications struct {
	OrganizationID []string       `xml:"OrganizationId"`
	ActionID       string         `xml:"ActionId"`
	Notification   []notification `xml:"Notification"`
}

type notification struct {
	ID      string   `xml:"Id"`
	SObject *sObject `xml:"sObject"`
}

// sObject holds the fields of Case and CaseComment the mapping reads, as the Outbound Message
// writes them: text, whichever fields the admin selected.
type sObject struct {
	Type             string `xml:"type,attr"` // xsi:type; any prefix, as Go resolves only declared ones
	ID               string `xml:"Id"`
	Status           string `xml:"Status"`
	Priority         string `xml:"Priority"`
	OwnerID          string `xml:"OwnerId"`
	Origin           string `xml:"Origin"`
	ContactID        string `xml:"ContactId"`
	IsClosed         string `xml:"IsClosed"`
	IsDeleted        string `xml:"IsDeleted"`
	CreatedDate      string `xml:"CreatedDate"`
	CreatedByID      string `xml:"CreatedById"`
	LastModifiedDate string `xml:"LastModifiedDate"`
	LastModifiedByID string `xml:"LastModifiedById"`
	ParentID         string `xml:"ParentId"`
	IsPublished      string `xml:"IsPublished"`
}

// wellFormed reads the whole body once before decoding it: Decode stops after the root
// element and never reports a DTD, and the organisation check of package verify must see
// every element the mapping reads, which holds only for a body without errors or DTD.
func wellFormed(body []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return adapter.Malformed("", "malformed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.Directive:
			return adapter.Malformed("", "a DTD or other <!...> declaration is not allowed in a SOAP message")
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(tok)) > 0 {
				return adapter.Malformed("", "text outside the SOAP envelope")
			}
		}
	}
	if roots != 1 {
		return adapter.Malformed("", "want one SOAP envelope, found %d root elements", roots)
	}
	return nil
}

func (a *Adapter) mapOutbound(body []byte) (adapter.Result, error) {
	if err := wellFormed(body); err != nil {
		return adapter.Result{}, err
	}
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return adapter.Result{}, adapter.Malformed("", "not a SOAP 1.1 envelope: %v", err)
	}
	if len(env.Body.Notifications) != 1 {
		return adapter.Result{}, adapter.Malformed("Envelope.Body.notifications", "want one notifications element of namespace %s, found %d", nsOutbound, len(env.Body.Notifications))
	}
	n := env.Body.Notifications[0]
	if len(n.OrganizationID) != 1 || strings.TrimSpace(n.OrganizationID[0]) == "" {
		return adapter.Result{}, adapter.Malformed("notifications.OrganizationId", "want exactly one, found %d", len(n.OrganizationID))
	}
	if len(n.Notification) == 0 {
		return adapter.Result{}, adapter.Malformed("notifications.Notification", "required: an Outbound Message carries at least one")
	}
	if len(n.Notification) > MaxNotifications {
		return adapter.Result{}, adapter.Malformed("notifications.Notification", "%d notifications; Salesforce sends at most %d", len(n.Notification), MaxNotifications)
	}
	var res adapter.Result
	for i, note := range n.Notification {
		field := "notifications.Notification[" + strconv.Itoa(i) + "]"
		id, err := adapter.RequiredIdent(note.ID, field+".Id")
		if err != nil {
			return adapter.Result{}, err
		}
		if note.SObject == nil {
			return adapter.Result{}, adapter.Malformed(field+".sObject", "required")
		}
		rec, err := readXML(note.SObject, field+".sObject")
		if err != nil {
			return adapter.Result{}, err
		}
		r, err := a.snapshot(id, rec)
		if err != nil {
			return adapter.Result{}, err
		}
		res.Events = append(res.Events, r.Events...)
		res.Skipped = append(res.Skipped, r.Skipped...)
	}
	return res, nil
}

// record is a Case or CaseComment read from either kind of delivery and checked.
type record struct {
	field             string // the path of the record, for problems
	typ               string // "Case", "CaseComment", or another sObject type
	id                string
	status, priority  string
	owner, origin     string
	contact           string
	closed, deleted   *bool
	published         *bool
	created, modified time.Time
	createdBy         string
	createdByType     string // a User's UserType, Flow callouts only
	modifiedBy        string
	modifiedByType    string
	parent            string
	modstamp          string // what makes two saves of one record different (Flow event ids)
	hasMod            bool
}

// timeLayouts: the Outbound Message's xsd:dateTime (2026-03-02T09:00:00.000Z) and Apex's
// JSON (2026-03-02T09:00:00.000+0000).
var timeLayouts = []string{"2006-01-02T15:04:05.999999999Z0700", time.RFC3339Nano}

const timeWant = "an xsd:dateTime"

func readXML(o *sObject, field string) (*record, error) {
	typ := o.Type
	if _, local, ok := strings.Cut(typ, ":"); ok {
		typ = local
	}
	r := &record{field: field, typ: typ}
	if typ != "Case" && typ != "CaseComment" {
		return r, nil
	}
	err := r.readIDs(field, o.ID, o.OwnerID, o.ContactID, o.CreatedByID, o.LastModifiedByID, o.ParentID)
	if err != nil {
		return nil, err
	}
	r.status, r.priority, r.origin = strings.TrimSpace(o.Status), strings.TrimSpace(o.Priority), strings.TrimSpace(o.Origin)
	for _, b := range []struct {
		dst  **bool
		v    string
		name string
	}{{&r.closed, o.IsClosed, "IsClosed"}, {&r.deleted, o.IsDeleted, "IsDeleted"}, {&r.published, o.IsPublished, "IsPublished"}} {
		if *b.dst, err = xsdBool(b.v, field+"."+b.name); err != nil {
			return nil, err
		}
	}
	if r.created, err = adapter.ParseTime(o.CreatedDate, field+".CreatedDate", timeWant, timeLayouts); err != nil {
		return nil, err
	}
	if strings.TrimSpace(o.LastModifiedDate) != "" {
		if r.modified, err = adapter.ParseTime(o.LastModifiedDate, field+".LastModifiedDate", timeWant, timeLayouts); err != nil {
			return nil, err
		}
		r.hasMod = true
	} else if typ == "Case" {
		// Without it every notification of the Case would look like its creation.
		return nil, adapter.Malformed(field+".LastModifiedDate", "required: it tells a new Case from an edit (select it in the Outbound Message)")
	}
	return r, nil
}

// xsdBool reads an xsd:boolean ("true", "false", "1", "0"); empty is absent.
func xsdBool(s, field string) (*bool, error) {
	switch strings.TrimSpace(s) {
	case "":
		return nil, nil
	case "true", "1":
		return adapter.Bool(true), nil
	case "false", "0":
		return adapter.Bool(false), nil
	}
	return nil, adapter.Malformed(field, "not an xsd:boolean: %q", adapter.Truncate(s, 20))
}

// snapshot maps one Outbound Message notification: a record as of its last save. The event ids
// are the notification's Id, which Salesforce keeps across its retries, and the kind of event.
func (a *Adapter) snapshot(noteID string, r *record) (adapter.Result, error) {
	switch {
	case r.typ != "Case" && r.typ != "CaseComment":
		return adapter.Skipped(SkipUnsupportedObject, "sObject type %q", adapter.Truncate(r.typ, 64)), nil
	case r.deleted != nil && *r.deleted:
		return adapter.Skipped(SkipDeleted, "%s %s is deleted", r.typ, r.id), nil
	case r.typ == "CaseComment":
		ev, err := r.comment(noteID + "-comment")
		if err != nil {
			return adapter.Result{}, err
		}
		return adapter.One(ev), nil
	}
	// Salesforce stamps a new record's CreatedDate and LastModifiedDate with the same instant.
	if r.modified.Equal(r.created) {
		return adapter.One(a.created(noteID+"-created", r)), nil
	}
	var res adapter.Result
	base := r.base("", r.modified)
	base.Actor = r.modifier()
	if st, ok := a.status(r); ok {
		ev := base
		ev.ID, ev.Type, ev.Status = noteID+"-status", "status_changed", st
		res.Events = append(res.Events, ev)
	} else {
		res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipUnmappedStatus, Detail: "Case Status " + strconv.Quote(adapter.Truncate(r.status, 64))})
	}
	if r.owner != "" { // an empty OwnerId is a field the admin left out: a Case always has an owner
		ev := base
		ev.ID, ev.Type = noteID+"-owner", "ticket_assigned"
		res.Events = append(res.Events, ev)
	}
	if r.priority != "" {
		if p, ok := priority(r.priority); ok {
			ev := base
			ev.ID, ev.Type, ev.Priority = noteID+"-priority", "priority_changed", p
			res.Events = append(res.Events, ev)
		} else {
			res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipUnmappedPriority, Detail: "Case Priority " + strconv.Quote(adapter.Truncate(r.priority, 64))})
		}
	}
	return res, nil
}

// base is an event of the Case r with its owner, priority and channel as of the record.
func (r *record) base(id string, at time.Time) canonical.Event {
	ev := canonical.Event{ID: id, Source: Source, TicketID: r.id, OccurredAt: at, Channel: adapter.Channel(r.origin)}
	ev.AssigneeID, ev.TeamID = owner(r.owner)
	if p, ok := priority(r.priority); ok {
		ev.Priority = p
	}
	return ev
}

// created is the ticket_created of a new Case: opened by its contact when it has one (Email-
// to-Case, Web-to-Case, an agent logging a call), else by the user who created it (outbound).
func (a *Adapter) created(id string, r *record) canonical.Event {
	ev := r.base(id, r.created)
	ev.Type = "ticket_created"
	if st, ok := a.status(r); ok {
		ev.Status = st
	}
	switch {
	case r.contact != "":
		ev.Actor = canonical.Actor{ID: r.contact, Kind: "customer"}
	case r.createdBy != "":
		ev.Actor = actorOf(r.createdBy, r.createdByType)
	default:
		ev.Actor = canonical.Actor{Kind: "system"}
	}
	return ev
}

// modifier is who made the last save.
func (r *record) modifier() canonical.Actor {
	if r.modifiedBy == "" {
		return canonical.Actor{Kind: "system"}
	}
	return actorOf(r.modifiedBy, r.modifiedByType)
}

// comment maps a CaseComment. An Outbound Message cannot say who the author is beyond the
// user id, so its comments are agents' (docs/crms.md says why portals want the Flow callout).
func (r *record) comment(id string) (canonical.Event, error) {
	if r.parent == "" {
		return canonical.Event{}, adapter.Malformed(r.field+".ParentId", "required: the Case the comment is on")
	}
	if r.published == nil {
		return canonical.Event{}, adapter.Malformed(r.field+".IsPublished", "required: a private comment is no response (select the field in the Outbound Message)")
	}
	ev := canonical.Event{ID: id, Source: Source, TicketID: r.parent, OccurredAt: r.created, Type: "agent_message",
		Public: adapter.Bool(*r.published)}
	ev.Actor = canonical.Actor{Kind: "system"}
	if r.createdBy != "" {
		ev.Actor = actorOf(r.createdBy, r.createdByType)
	}
	if ev.Actor.Kind == "customer" {
		ev.Type, ev.Public = "customer_message", nil
	}
	return ev, nil
}

// actorOf names a Salesforce user by its UserType when the delivery gives it: Experience Cloud
// (portal) users are customers, the Automated Process user is automation, everyone else an agent.
func actorOf(id, userType string) canonical.Actor {
	switch userType {
	case "CspLitePortal", "CustomerSuccess", "PowerCustomerSuccess", "Guest", "CsnOnly", "SelfService":
		return canonical.Actor{ID: id, Kind: "customer"}
	case "AutomatedProcess":
		return canonical.Actor{Kind: "automation"}
	}
	return canonical.Actor{ID: id, Kind: "agent"}
}

// owner splits OwnerId: a User (key prefix 005) is the assignee, a Queue (00G) the team.
func owner(id string) (assignee, team string) {
	switch {
	case strings.HasPrefix(id, "005"):
		return id, ""
	case strings.HasPrefix(id, "00G"):
		return "", id
	}
	return "", ""
}

// defaultStatuses are the standard Case Status picklist values and common additions, in
// lower case; the tenant's statuses: comes first.
var defaultStatuses = map[string]string{
	"new": "new", "working": "open", "open": "open", "in progress": "open", "escalated": "open",
	"on hold": "on_hold", "waiting on customer": "pending", "pending": "pending",
	"resolved": "solved", "solved": "solved", "closed": "closed",
}

// status maps a Case's Status: the tenant's mapping, the defaults, then IsClosed.
func (a *Adapter) status(r *record) (string, bool) {
	if st, ok := a.statuses[r.status]; ok {
		return st, true
	}
	if st, ok := defaultStatuses[strings.ToLower(r.status)]; ok {
		return st, true
	}
	if r.closed != nil {
		if *r.closed {
			return "closed", true
		}
		return "open", true
	}
	return "", false
}

// priority maps the standard Case Priority picklist.
func priority(p string) (string, bool) {
	switch strings.ToLower(p) {
	case "low":
		return "low", true
	case "medium", "normal":
		return "normal", true
	case "high":
		return "high", true
	case "critical", "urgent":
		return "urgent", true
	}
	return "", false
}

// flowBody is a Flow callout of deploy/webhooks/salesforce: the organisation, the record as
// Apex's JSON.serialize writes it, and for an update the record before the save.
type flowBody struct {
	OrganizationID *string     `json:"organization_id"`
	Record         *apexRecord `json:"record"`
	Prior          *apexRecord `json:"prior"`
}

type apexRecord struct {
	Attributes struct {
		Type string `json:"type"`
	} `json:"attributes"`
	ID               string    `json:"Id"`
	Status           string    `json:"Status"`
	Priority         string    `json:"Priority"`
	OwnerID          string    `json:"OwnerId"`
	Origin           string    `json:"Origin"`
	ContactID        string    `json:"ContactId"`
	IsClosed         *bool     `json:"IsClosed"`
	IsDeleted        *bool     `json:"IsDeleted"`
	IsPublished      *bool     `json:"IsPublished"`
	CreatedDate      string    `json:"CreatedDate"`
	CreatedByID      string    `json:"CreatedById"`
	CreatedBy        *userInfo `json:"CreatedBy"`
	LastModifiedDate string    `json:"LastModifiedDate"`
	LastModifiedByID string    `json:"LastModifiedById"`
	LastModifiedBy   *userInfo `json:"LastModifiedBy"`
	SystemModstamp   string    `json:"SystemModstamp"`
	ParentID         string    `json:"ParentId"`
}

type userInfo struct {
	UserType string `json:"UserType"`
}

func readApex(o *apexRecord, field string) (*record, error) {
	r := &record{field: field, typ: o.Attributes.Type}
	if r.typ == "" {
		return nil, adapter.Malformed(field+".attributes.type", "required: the sObject type Apex writes")
	}
	if r.typ != "Case" && r.typ != "CaseComment" {
		return r, nil
	}
	err := r.readIDs(field, o.ID, o.OwnerID, o.ContactID, o.CreatedByID, o.LastModifiedByID, o.ParentID)
	if err != nil {
		return nil, err
	}
	r.status, r.priority, r.origin = o.Status, o.Priority, o.Origin
	r.closed, r.deleted, r.published = o.IsClosed, o.IsDeleted, o.IsPublished
	if o.CreatedBy != nil {
		r.createdByType = o.CreatedBy.UserType
	}
	if o.LastModifiedBy != nil {
		r.modifiedByType = o.LastModifiedBy.UserType
	}
	if r.created, err = adapter.ParseTime(o.CreatedDate, field+".CreatedDate", timeWant, timeLayouts); err != nil {
		return nil, err
	}
	if o.LastModifiedDate != "" {
		if r.modified, err = adapter.ParseTime(o.LastModifiedDate, field+".LastModifiedDate", timeWant, timeLayouts); err != nil {
			return nil, err
		}
		r.hasMod = true
	}
	r.modstamp = o.SystemModstamp
	if r.modstamp == "" {
		r.modstamp = o.LastModifiedDate
	}
	return r, nil
}

func (a *Adapter) mapFlow(body []byte) (adapter.Result, error) {
	var b flowBody
	if err := adapter.DecodeJSON(body, &b); err != nil {
		return adapter.Result{}, err
	}
	if b.OrganizationID == nil || strings.TrimSpace(*b.OrganizationID) == "" {
		return adapter.Result{}, adapter.Malformed("organization_id", "required")
	}
	if b.Record == nil {
		return adapter.Result{}, adapter.Malformed("record", "required")
	}
	r, err := readApex(b.Record, "record")
	if err != nil {
		return adapter.Result{}, err
	}
	switch {
	case r.typ != "Case" && r.typ != "CaseComment":
		return adapter.Skipped(SkipUnsupportedObject, "sObject type %q", adapter.Truncate(r.typ, 64)), nil
	case r.deleted != nil && *r.deleted:
		return adapter.Skipped(SkipDeleted, "%s %s is deleted", r.typ, r.id), nil
	}
	// A callout carries no id of its own; the record's id and the instant of the save are the
	// same in every retry of it, and differ between saves.
	id := func(kind string) string { return adapter.EventID(*b.OrganizationID, r.id, r.modstamp, kind) }
	if r.typ == "CaseComment" {
		ev, err := r.comment(id("comment"))
		if err != nil {
			return adapter.Result{}, err
		}
		return adapter.One(ev), nil
	}
	if b.Prior == nil {
		return adapter.One(a.created(id("created"), r)), nil
	}
	prior, err := readApex(b.Prior, "prior")
	if err != nil {
		return adapter.Result{}, err
	}
	if prior.typ != r.typ || prior.id != r.id {
		return adapter.Result{}, adapter.Malformed("prior.Id", "the prior record must be the same %s as record", r.typ)
	}
	if !r.hasMod {
		return adapter.Result{}, adapter.Malformed("record.LastModifiedDate", "required for an update")
	}
	var res adapter.Result
	base := r.base("", r.modified)
	base.Actor = r.modifier()
	if r.status != prior.status || !sameBool(r.closed, prior.closed) {
		if st, ok := a.status(r); ok {
			ev := base
			ev.ID, ev.Type, ev.Status = id("status"), "status_changed", st
			res.Events = append(res.Events, ev)
		} else {
			res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipUnmappedStatus, Detail: "Case Status " + strconv.Quote(adapter.Truncate(r.status, 64))})
		}
	}
	if r.owner != prior.owner {
		ev := base
		ev.ID, ev.Type = id("owner"), "ticket_assigned"
		res.Events = append(res.Events, ev)
	}
	if r.priority != prior.priority {
		if p, ok := priority(r.priority); ok {
			ev := base
			ev.ID, ev.Type, ev.Priority = id("priority"), "priority_changed", p
			res.Events = append(res.Events, ev)
		} else {
			res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipUnmappedPriority, Detail: "Case Priority " + strconv.Quote(adapter.Truncate(r.priority, 64))})
		}
	}
	if len(res.Events) == 0 && len(res.Skipped) == 0 {
		res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipUnchanged, Detail: "Case " + r.id + ": no mapped field changed"})
	}
	return res, nil
}

func sameBool(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// readIDs reads the ids an Outbound Message and a Flow callout both carry for a Case or
// CaseComment, each checked as an identifier and named by its sObject field.
func (r *record) readIDs(field, id, owner, contact, createdBy, modifiedBy, parent string) error {
	var err error
	if r.id, err = adapter.RequiredIdent(id, field+".Id"); err != nil {
		return err
	}
	for _, f := range []struct {
		dst  *string
		v    string
		name string
	}{
		{&r.owner, owner, "OwnerId"}, {&r.contact, contact, "ContactId"},
		{&r.createdBy, createdBy, "CreatedById"}, {&r.modifiedBy, modifiedBy, "LastModifiedById"},
		{&r.parent, parent, "ParentId"},
	} {
		if *f.dst, err = adapter.Ident(strings.TrimSpace(f.v), field+"."+f.name); err != nil {
			return err
		}
	}
	return nil
}
