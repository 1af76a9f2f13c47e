package web

import (
	"net/http"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/console/internal/session"
)

var deliveryStatuses = map[string]tpv1.DeliveryStatus{"": tpv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED,
	"pending": tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING, "delivered": tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED,
	"failed": tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED, "suppressed": tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED}

type deliveriesData struct {
	Tenant                       string
	Receiver, Status, Escalation string
	Statuses                     []string
	Deliveries                   []*tpv1.Delivery
	Next                         string
	CanTest                      bool
}

func (h *Handler) deliveries(w http.ResponseWriter, r *http.Request, s *session.Session) {
	q := r.URL.Query()
	d := deliveriesData{Tenant: s.Tenant, Receiver: q.Get("receiver"), Status: q.Get("status"), Escalation: q.Get("escalation"),
		Statuses: []string{"pending", "delivered", "failed", "suppressed"}, CanTest: s.Has("notifications:test")}
	st, ok := deliveryStatuses[d.Status]
	if !ok {
		h.fail(w, r, s, http.StatusBadRequest, "status: want pending, delivered, failed or suppressed")
		return
	}
	for name, v := range map[string]string{"receiver": d.Receiver, "escalation": d.Escalation, "page": q.Get("page")} {
		if len(v) > maxIDBytes {
			h.fail(w, r, s, http.StatusBadRequest, name+": longer than 512 bytes")
			return
		}
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	resp, err := h.o.Notif.ListDeliveries(ctx, &tpv1.ListDeliveriesRequest{Tenant: s.Tenant, Receiver: d.Receiver, Status: st,
		EscalationId: d.Escalation, PageSize: 100, PageToken: q.Get("page")})
	if err != nil {
		h.rpcFail(w, r, s, "deliveries", err)
		return
	}
	d.Deliveries = resp.GetDeliveries()
	if t := resp.GetNextPageToken(); t != "" {
		d.Next = link("/t/"+s.Tenant+"/deliveries", "receiver", d.Receiver, "status", d.Status, "escalation", d.Escalation, "page", t)
	}
	h.render(w, http.StatusOK, "deliveries", page{Title: "Deliveries", Session: s, Nav: "deliveries", Data: d})
}

type deliveryData struct {
	Tenant string
	D      *tpv1.Delivery
}

func (h *Handler) delivery(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id, ok := boundedParam(r, "id")
	if !ok || id == "" {
		h.fail(w, r, s, http.StatusBadRequest, "id: the delivery id is missing or longer than 512 bytes")
		return
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	resp, err := h.o.Notif.GetDelivery(ctx, &tpv1.GetDeliveryRequest{Tenant: s.Tenant, Id: id})
	if err != nil {
		h.rpcFail(w, r, s, "delivery", err)
		return
	}
	h.render(w, http.StatusOK, "delivery", page{Title: "Delivery", Session: s, Nav: "deliveries", Data: deliveryData{Tenant: s.Tenant, D: resp.GetDelivery()}})
}

type testData struct {
	Tenant, Receiver string
	Attempt          *tpv1.Attempt
	Delivered        bool
}

// testReceiver sends notify's sample notification to a receiver and shows the attempt.
func (h *Handler) testReceiver(w http.ResponseWriter, r *http.Request, s *session.Session) {
	rcv := r.PostForm.Get("receiver")
	if rcv == "" || len(rcv) > maxIDBytes {
		h.fail(w, r, s, http.StatusBadRequest, "receiver: the receiver name is missing or longer than 512 bytes")
		return
	}
	ctx, cancel := h.call(r.Context(), s)
	defer cancel()
	resp, err := h.o.Notif.TestReceiver(ctx, &tpv1.TestReceiverRequest{Tenant: s.Tenant, Receiver: rcv})
	if err != nil {
		h.rpcFail(w, r, s, "test receiver", err)
		return
	}
	h.render(w, http.StatusOK, "tested", page{Title: "Receiver test", Session: s, Nav: "deliveries",
		Data: testData{Tenant: s.Tenant, Receiver: rcv, Attempt: resp.GetAttempt(), Delivered: resp.GetDelivered()}})
}
