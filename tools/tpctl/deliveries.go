package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
)

func notifyEndpoint() endpoint { return endpoint{addrFlag: "notify-addr", service: "notify"} }

const deliveriesListSummary = `tpctl deliveries list prints notify's deliveries of a tenant, newest first, from notify's
NotificationService: one notification to one receiver each, with its status (pending, delivered,
failed, suppressed) and why it failed or was suppressed. Every filter given must match. It pages
through every page (or stops after -limit rows); -json prints one document in the API's
ListDeliveriesResponse form with every page's deliveries.

Needs the tenant's notifications:read scope (or an operator key). Exit 0 with the rows, 1 when
notify refused or failed (its code and message), 2 on bad flags.`

type deliveriesListConfig struct {
	queryConfig
	Escalation, Receiver, Status string
	CreatedFrom, CreatedTo       string
	Limit, PageSize              int
}

func deliveriesList(args []string, cio cmdIO) error {
	var c deliveriesListConfig
	s := envflag.New("tpctl deliveries list", deliveriesListSummary, cio.lookup)
	c.queryConfig.register(s, notifyEndpoint(), "127.0.0.1:9092", "notifications:read")
	s.String(&c.Escalation, "escalation", "", "Only deliveries carrying a change of this escalation id.")
	s.String(&c.Receiver, "receiver", "", "Only deliveries to this receiver (its name in the routing file).")
	s.String(&c.Status, "status", "", "Only deliveries in this status: pending, delivered, failed or suppressed.")
	s.String(&c.CreatedFrom, "created-from", "", "Only deliveries created at or after this time (RFC 3339).")
	s.String(&c.CreatedTo, "created-to", "", "Only deliveries created before this time (RFC 3339).")
	s.Int(&c.Limit, "limit", 0, "Stop after this many rows; 0 prints every page.")
	s.Int(&c.PageSize, "page-size", 100, "Rows asked per call, 1 to 500.")
	if err := parse(s, cio, args); err != nil {
		return err
	}
	errs := c.queryConfig.check()
	st, err := parseEnum("status", c.Status, "DELIVERY_STATUS_", tpv1.DeliveryStatus_value)
	errs = append(errs, err)
	req := &tpv1.ListDeliveriesRequest{Tenant: c.Tenant, EscalationId: c.Escalation, Receiver: c.Receiver, Status: tpv1.DeliveryStatus(st)}
	created, rerrs := timeRange("created-from", c.CreatedFrom, "created-to", c.CreatedTo)
	req.Created = created
	errs = append(errs, rerrs...)
	errs = append(errs, pageErrs(c.Limit, c.PageSize, maxListPage)...)
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	nc := tpv1.NewNotificationServiceClient(conn)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	all := &tpv1.ListDeliveriesResponse{}
	all.Deliveries, all.NextPageToken, err = allPages(ctx, &c.queryConfig, "list deliveries", c.Limit, c.PageSize,
		func(ctx context.Context, token string, size int32) ([]*tpv1.Delivery, string, error) {
			req.PageToken, req.PageSize = token, size
			r, err := nc.ListDeliveries(ctx, req)
			return r.GetDeliveries(), r.GetNextPageToken(), err
		})
	if err != nil {
		return err
	}
	if c.JSON {
		return writeJSON(cio.stdout, all)
	}
	t := newTable(cio.stdout, "id", "status", "receiver", "created", "updated", "escalations", "reason")
	for _, d := range all.Deliveries {
		t.row(d.GetId(), enumWord(d.GetStatus().String(), "DELIVERY_STATUS_"), d.GetReceiver(), ts(d.GetCreatedAt()), ts(d.GetUpdatedAt()),
			strings.Join(d.GetEscalationIds(), ","), d.GetReason())
	}
	if err := t.flush(); err != nil {
		return err
	}
	more := ""
	if all.NextPageToken != "" {
		more = " (more not shown: -limit)"
	}
	_, err = fmt.Fprintf(cio.stdout, "%d deliveries%s\n", len(all.Deliveries), more)
	return err
}

const deliveriesGetSummary = `tpctl deliveries get prints one delivery with every attempt (time, HTTP status or SMTP reply
code, error, latency); -json prints the API's GetDeliveryResponse.

Needs the tenant's notifications:read scope (or an operator key). Exit 0, 1 when notify refused
or failed (NotFound for an unknown id), 2 on bad flags.`

func deliveriesGet(args []string, cio cmdIO) error {
	var c queryConfig
	var id string
	s := envflag.New("tpctl deliveries get", deliveriesGetSummary, cio.lookup)
	c.register(s, notifyEndpoint(), "127.0.0.1:9092", "notifications:read")
	s.String(&id, "id", "", "The delivery's id (as deliveries list prints it). Required.")
	if err := parse(s, cio, args); err != nil {
		return err
	}
	errs := c.check()
	if id == "" {
		errs = append(errs, errors.New("-id: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	r, err := tpv1.NewNotificationServiceClient(conn).GetDelivery(ctx, &tpv1.GetDeliveryRequest{Tenant: c.Tenant, Id: id})
	if err != nil {
		return rpcFailed("get delivery", err)
	}
	if c.JSON {
		return writeJSON(cio.stdout, r)
	}
	d := r.GetDelivery()
	t := newTable(cio.stdout, "field", "value")
	t.row("id", d.GetId())
	t.row("status", enumWord(d.GetStatus().String(), "DELIVERY_STATUS_"))
	t.row("reason", d.GetReason())
	t.row("receiver", d.GetReceiver())
	t.row("group", d.GetGroupKey())
	t.row("escalations", strings.Join(d.GetEscalationIds(), ","))
	t.row("changes", strings.Join(d.GetChanges(), ","))
	t.row("created", ts(d.GetCreatedAt()))
	t.row("updated", ts(d.GetUpdatedAt()))
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(cio.stdout)
	at := newTable(cio.stdout, "attempt", "at", "code", "latency", "error")
	for i, a := range d.GetAttempts() {
		at.row(strconv.Itoa(i+1), ts(a.GetAt()), strconv.Itoa(int(a.GetStatusCode())), strconv.FormatFloat(a.GetLatencySeconds(), 'f', 3, 64)+"s", a.GetError())
	}
	return at.flush()
}
