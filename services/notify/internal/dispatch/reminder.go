package dispatch

import (
	"context"
	"log/slog"
)

// remind repeats a group's escalations still open once its repeat interval has passed since its
// last send, and plans the next look.
func (d *Dispatcher) remind(ctx context.Context, tenant, gid string) error {
	now := d.now()
	b, wait, err := d.store.Remind(ctx, tenant, gid, now)
	switch {
	case err != nil:
		return err
	case b != nil:
		return d.deliver(ctx, b, now)
	case !wait.IsZero():
		return d.timers.Schedule(ctx, reminderTimer(tenant, gid), wait)
	}
	return nil
}

// remindStage lets a group that was just sent know when to consider a reminder: its reminder
// timer works out from the group when one is due, if ever.
type remindStage struct{ timers Timers }

func (s remindStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		err := s.timers.Schedule(ctx, reminderTimer(d.batch.Tenant, d.batch.GroupID), d.taken)
		return err == nil, err
	})
}
