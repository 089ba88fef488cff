package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgehost/edgehost/internal/fleet"
	"github.com/edgehost/edgehost/internal/server"
	"github.com/edgehost/edgehost/internal/store"
)

// Fleet mode (README.md, "Fleet"), when Config.Fleet is set: the fleet
// holds the versions (its object store) and the active version (a KV
// entry changed with compare-and-set); the local store keeps a copy of
// every version this node served and its active pointer, so a node
// started while NATS is down serves the last version it had.
//
//	GET /v1/fleet   FleetInfo: the service's active version and every node's status
//
// A deploy (POST /v1/modules) is answered once the version is stored in
// the fleet (and, with activation, once the active entry names it and
// this node serves it); the other nodes follow by watching the entry
// (RunFleet). POST /v1/modules and POST /v1/modules/{version}/activate
// take ?if_revision=R: the activation happens only if the active entry
// is still at revision R (0: never set), else 409. Without it the
// revision read just before is used, so of two activations racing, the
// loser gets 409 rather than being overwritten silently. 503: NATS
// unreachable.

// FleetInfo is the answer to GET /v1/fleet.
type FleetInfo struct {
	Service   string             `json:"service"`
	Node      string             `json:"node"`
	Connected bool               `json:"connected"`
	Active    *fleet.Active      `json:"active,omitempty"` // nil when NATS is unreachable
	Nodes     []fleet.NodeStatus `json:"nodes"`
}

// fleetState is this node's view of the fleet, under Admin.mu.
type fleetState struct {
	rev   uint64    // revision of the active entry the served version came from
	since time.Time // when the served version became active here
}

// fleetInfo handles GET /v1/fleet.
func (a *Admin) fleetInfo(c echo.Context) error {
	f := a.cfg.Fleet
	if f == nil {
		return echo.NewHTTPError(http.StatusNotFound, "this host is not in a fleet (serve --cluster)")
	}
	ctx := c.Request().Context()
	out := FleetInfo{Service: f.Service(), Node: f.Node(), Connected: f.Connected(), Nodes: []fleet.NodeStatus{}}
	act, err := f.Active(ctx)
	if err != nil {
		return fleetHTTPError(err)
	}
	out.Active = &act
	if out.Nodes, err = f.Nodes(ctx); err != nil {
		return fleetHTTPError(err)
	}
	return c.JSON(http.StatusOK, out)
}

// fleetHTTPError maps a fleet error onto the answer: 409 conflict, 404
// unknown version, 503 NATS unreachable.
func fleetHTTPError(err error) error {
	switch {
	case errors.Is(err, fleet.ErrConflict):
		return echo.NewHTTPError(http.StatusConflict, err.Error()+"; read GET /v1/fleet and retry")
	case errors.Is(err, fleet.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, err.Error())
	case errors.Is(err, fleet.ErrUnavailable):
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return echo.NewHTTPError(http.StatusInternalServerError, err.Error())
}

// ifRevision reads ?if_revision. Errors: 400.
func ifRevision(c echo.Context) (*uint64, error) {
	s := c.QueryParam("if_revision")
	if s == "" {
		return nil, nil
	}
	r, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("if_revision=%q: want the active entry's revision (GET /v1/fleet)", s))
	}
	return &r, nil
}

// fleetActivate makes stored version n the fleet's active version with
// compare-and-set, then serves it here: loadV gives it compiled (fromKept:
// rebound from a kept module, kept.go), unless this node's watch (follow)
// applied the new entry first; previous and fromKept then describe that
// activation, and loadV is not called. Errors: the fleet's (see
// fleetHTTPError) or the local store's.
func (a *Admin) fleetActivate(ctx context.Context, n int, ifRev *uint64, loadV func() (v *server.Version, fromKept bool, err error)) (previous int, fromKept bool, err error) {
	a.mu.Lock()
	before := a.active
	a.mu.Unlock()
	act, err := a.cfg.Fleet.Activate(ctx, n, ifRev)
	if err != nil {
		return 0, false, fleetHTTPError(err)
	}
	a.fleetMu.Lock()
	defer a.fleetMu.Unlock()
	a.mu.Lock()
	applied := a.fleet.rev >= act.Revision && a.active == n
	fromKept = a.activeKept
	a.mu.Unlock()
	if applied {
		a.report(ctx)
		return before, fromKept, nil
	}
	v, fromKept, err := loadV()
	if err != nil {
		return 0, false, err
	}
	previous, err = a.activateRev(n, v, fromKept, act.Revision)
	if err != nil {
		v.Module.Close(context.Background())
		return 0, false, echo.NewHTTPError(http.StatusInternalServerError, err.Error())
	}
	a.report(ctx)
	return previous, fromKept, nil
}

// activateRev is activate for a version the fleet's entry at revision rev
// names; an activation from an older revision than the one served is
// skipped (reported as ok, previous = n).
func (a *Admin) activateRev(n int, v *server.Version, fromKept bool, rev uint64) (int, error) {
	a.mu.Lock()
	if rev < a.fleet.rev {
		a.mu.Unlock()
		v.Module.Close(context.Background())
		return n, nil
	}
	a.mu.Unlock()
	prev, err := a.activate(n, v, fromKept)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	a.fleet.rev = rev
	if prev != n {
		a.fleet.since = time.Now().UTC()
	}
	a.mu.Unlock()
	return prev, nil
}

// localCopy makes sure version n is in the local store, fetching it from
// the fleet when missing, and returns its record.
func (a *Admin) localCopy(ctx context.Context, n int) (store.Version, error) {
	rec, err := a.cfg.Store.Get(n)
	if a.cfg.Fleet == nil || !errors.Is(err, store.ErrNotFound) {
		return rec, err
	}
	upload, err := a.cfg.Fleet.Fetch(ctx, n)
	if errors.Is(err, fleet.ErrNotFound) {
		return store.Version{}, fmt.Errorf("version %d: %w", n, store.ErrNotFound)
	}
	if err != nil {
		return store.Version{}, err
	}
	// The upload limit, not the upload's size: a package unpacks to more
	// than its compressed bytes.
	st, err := a.cfg.Store.Stage(bytes.NewReader(upload), max(a.cfg.MaxUploadBytes, int64(len(upload))))
	if err != nil {
		return store.Version{}, fmt.Errorf("fleet version %d: %w", n, err)
	}
	return st.CommitAs(n)
}

// follow serves the fleet's active version act on this node (Watch's
// apply): copied locally, compiled (with the on-disk compile cache) and
// activated, unless this node serves it, or a newer one, already.
func (a *Admin) follow(ctx context.Context, act fleet.Active) error {
	a.fleetMu.Lock()
	defer a.fleetMu.Unlock()
	a.mu.Lock()
	skip := act.Revision <= a.fleet.rev || a.active == act.Version
	if skip && act.Revision > a.fleet.rev {
		a.fleet.rev = act.Revision
	}
	a.mu.Unlock()
	if skip {
		a.report(ctx)
		return nil
	}
	if _, err := a.localCopy(ctx, act.Version); err != nil {
		return err
	}
	v, fromKept, err := a.loadOrKept(ctx, act.Version)
	if err != nil {
		return err
	}
	prev, err := a.activateRev(act.Version, v, fromKept, act.Revision)
	if err != nil {
		v.Module.Close(context.Background())
		return err
	}
	a.log.Info("fleet: following the fleet's active version", "version", act.Version, "previous", prev, "by", act.By, "revision", act.Revision, "from_kept", fromKept)
	a.report(ctx)
	return nil
}

// report records this node's status in the fleet (best effort).
func (a *Admin) report(ctx context.Context) {
	a.mu.Lock()
	s := fleet.NodeStatus{Version: a.active, Since: a.fleet.since, AdminURL: a.cfg.AdminURL}
	a.mu.Unlock()
	if err := a.cfg.Fleet.Report(ctx, s); err != nil {
		a.log.Debug("fleet: reporting status", "err", err)
	}
}

// RunFleet follows the fleet until ctx ends: it activates the fleet's
// active version whenever it changes (catching up after a lost link),
// applies the purges other nodes publish to Config.Cache, and reports
// this node's status every 2 s. It returns at once without a fleet.
func (a *Admin) RunFleet(ctx context.Context) {
	f := a.cfg.Fleet
	if f == nil {
		return
	}
	a.mu.Lock()
	if a.fleet.since.IsZero() {
		a.fleet.since = time.Now().UTC()
	}
	a.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { f.Watch(ctx, a.follow); done <- struct{}{} }()
	go func() { f.Purges(ctx, a.applyPurge); done <- struct{}{} }()
	t := time.NewTicker(fleet.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			<-done
			return
		case <-t.C:
			a.report(ctx)
		}
	}
}

// applyPurge applies a purge another node published.
func (a *Admin) applyPurge(p fleet.Purge) {
	c := a.cfg.Cache
	if c == nil {
		return
	}
	var n int
	if p.All {
		n = c.PurgeAll("")
	} else {
		n = c.Purge("", p.SurrogateKey, p.Soft)
	}
	a.log.Info("fleet: purge from another node", "origin", p.Origin, "surrogate_key", p.SurrogateKey, "all", p.All, "soft", p.Soft, "purged", n)
}

// publishPurge publishes a purge applied here to the other nodes.
// Errors: 503 when NATS is unreachable (the purge applied here only).
func (a *Admin) publishPurge(ctx context.Context, p fleet.Purge) error {
	if a.cfg.Fleet == nil {
		return nil
	}
	if err := a.cfg.Fleet.PublishPurge(ctx, p); err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "purged on this node only: "+err.Error())
	}
	return nil
}
