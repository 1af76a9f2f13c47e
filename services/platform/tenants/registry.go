package tenants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/filewatch"
)

// DefaultPoll is how often a registry looks at its file for changes.
const DefaultPoll = 2 * time.Second

// Options are how a registry reads and reloads its file.
type Options struct {
	// Getenv resolves {env: NAME} references; nil means os.Getenv.
	Getenv func(string) string
	// Log receives the load and reload lines; nil discards them.
	Log *slog.Logger
	// Poll is how often Watch reads the file; 0 means DefaultPoll.
	Poll time.Duration
}

// Registry is the tenants file in force: the tenants a service knows and the credentials it
// accepts. Reads are lock-free and see one whole file: a reload swaps everything at once, so a
// request never sees the keys of one version with the tenants of another.
type Registry[S any] struct {
	path    string
	sources SourcesParser[S]
	getenv  func(string) string
	log     *slog.Logger
	poll    time.Duration

	cur  atomic.Pointer[snapshot[S]]
	last []byte // the content in force when Watch starts

	applied, invalid atomic.Int64
}

type snapshot[S any] struct {
	cfg  *Config[S]
	auth *auth.Authenticator
}

// Open loads the tenants file at path for a service that verifies no webhook: sources: is
// accepted unread. An empty path is a registry without tenants or credentials, where every
// tenant is unknown. A file that cannot be read or is invalid is an error (Problems, each with
// its line, when it is readable but wrong): a service refuses to start on it.
func Open(ctx context.Context, path string, o Options) (*Registry[NoSources], error) {
	return OpenWith[NoSources](ctx, path, nil, o)
}

// OpenWith is Open with sources reading the webhook sources (ingest's SourcesParser).
func OpenWith[S any](_ context.Context, path string, sources SourcesParser[S], o Options) (*Registry[S], error) {
	r := &Registry[S]{path: path, sources: sources, getenv: o.Getenv, log: o.Log, poll: o.Poll}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.poll <= 0 {
		r.poll = DefaultPoll
	}
	if path == "" {
		a, err := auth.NewAuthenticator(nil, nil)
		if err != nil {
			return nil, err
		}
		r.cur.Store(&snapshot[S]{cfg: &Config[S]{Tenants: map[string]*Tenant[S]{}}, auth: a})
		r.log.Warn("no tenants file: every tenant is unknown and no credential is accepted")
		return r, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tenants file: %w", err)
	}
	s, err := r.build(data)
	if err != nil {
		return nil, err
	}
	r.last = data
	r.cur.Store(s)
	r.log.Info("tenants file loaded", "file", path, "tenants", s.cfg)
	return r, nil
}

func (r *Registry[S]) build(data []byte) (*snapshot[S], error) {
	cfg, err := Parse(r.path, filepath.Dir(r.path), data, r.getenv, r.sources)
	if err != nil {
		return nil, err
	}
	// The file's checks leave nothing for NewAuthenticator to refuse but what it cannot
	// support; its error names keys and tenants, never a hash.
	a, err := auth.NewAuthenticator(cfg.Keys(), cfg.Providers())
	if err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", r.path, err)
	}
	return &snapshot[S]{cfg: cfg, auth: a}, nil
}

// Config returns the file in force. It is never modified: a reload replaces it.
func (r *Registry[S]) Config() *Config[S] { return r.cur.Load().cfg }

// Known reports whether the file in force lists tenant.
func (r *Registry[S]) Known(tenant string) bool {
	_, ok := r.cur.Load().cfg.Tenants[tenant]
	return ok
}

// Tenant returns a tenant's settings in the file in force.
func (r *Registry[S]) Tenant(id string) (*Tenant[S], bool) { return r.cur.Load().cfg.Tenant(id) }

// Authenticate returns who authorization (an Authorization header or gRPC metadata value)
// proves the caller is, by the credentials of the file in force. A key removed from the file
// is auth.ErrInvalid from the reload on; one marked revoked: true is auth.ErrRevoked, naming
// the key so the caller can log its use.
func (r *Registry[S]) Authenticate(ctx context.Context, authorization string) (auth.Principal, error) {
	return r.cur.Load().auth.Authenticate(ctx, authorization)
}

// Watch reloads the file whenever its content changes, until ctx ends; it returns nil then. A
// file that became unreadable or invalid is logged with its problems, and the one in force
// stays. Without a file there is nothing to watch and it returns at once. Only the tenants
// file itself is watched: a changed secret file takes effect with the next change of the
// tenants file.
func (r *Registry[S]) Watch(ctx context.Context) error {
	if r.path == "" {
		return nil
	}
	return filewatch.Poll(ctx, r.path, r.poll, r.last, r.log, func(data []byte) error {
		s, err := r.build(data)
		if err != nil {
			r.invalid.Add(1)
			return err
		}
		r.cur.Store(s)
		r.applied.Add(1)
		r.log.Info("tenants file reloaded", "file", r.path, "tenants", s.cfg)
		return nil
	})
}

// Instrument reports the file in force and its reloads on meter: tenants.count,
// tenants.api_keys{state=active|revoked} and tenants.reloads{result=applied|invalid}.
func (r *Registry[S]) Instrument(meter metric.Meter) error {
	tenants, err1 := meter.Int64ObservableGauge("tenants.count",
		metric.WithDescription("Tenants in the tenants file in force."))
	keys, err2 := meter.Int64ObservableGauge("tenants.api_keys",
		metric.WithDescription("API keys in the tenants file in force, by state (active, revoked)."))
	reloads, err3 := meter.Int64ObservableCounter("tenants.reloads",
		metric.WithDescription("Changes of the tenants file seen, by result: applied, or invalid and ignored."))
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("tenants metrics: %w", err)
	}
	active, revoked := metric.WithAttributes(attribute.String("state", "active")), metric.WithAttributes(attribute.String("state", "revoked"))
	applied, invalid := metric.WithAttributes(attribute.String("result", "applied")), metric.WithAttributes(attribute.String("result", "invalid"))
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		cfg := r.Config()
		o.ObserveInt64(tenants, int64(len(cfg.Tenants)))
		var a, v int64
		for _, k := range cfg.Keys() {
			if k.Revoked {
				v++
			} else {
				a++
			}
		}
		o.ObserveInt64(keys, a, active)
		o.ObserveInt64(keys, v, revoked)
		o.ObserveInt64(reloads, r.applied.Load(), applied)
		o.ObserveInt64(reloads, r.invalid.Load(), invalid)
		return nil
	}, tenants, keys, reloads)
	if err != nil {
		return fmt.Errorf("tenants metrics: %w", err)
	}
	return nil
}
