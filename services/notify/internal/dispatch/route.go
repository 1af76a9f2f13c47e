package dispatch

import (
	"context"
	"log/slog"

	"google.golang.org/protobuf/proto"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/routing"
)

// routeStage puts a change on every route of the routing tree that takes its labels, each
// with the group it falls into there.
type routeStage struct{ root *routing.Route }

func (s routeStage) exec(_ context.Context, _ *slog.Logger, ns []*notice) ([]*notice, error) {
	var out []*notice
	_, err := each(ns, func(n *notice) (bool, error) {
		data, err := proto.Marshal(n.change)
		if err != nil {
			return false, err
		}
		for _, route := range s.root.Match(n.labels) {
			r := *n
			r.data, r.route = data, route
			r.key, r.groupLabels = route.GroupKey(n.labels)
			r.gid = deliveries.GroupID(route.Receiver, r.key)
			out = append(out, &r)
		}
		return false, nil
	})
	return out, err
}
