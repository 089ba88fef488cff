package admin

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/server"
)

// Kept versions (Config.KeptVersions; README.md, "Deploying"): a version
// replaced on the server is retired as before, its requests finished and
// its sandboxes ended (parked ones told to end: server.Drain), but its
// compiled module stays open, trimmed of what it kept for its next
// sandboxes (engine.Trimmer). Re-activating that stored version then makes
// a new server.Version of the module and a new Env from the stored
// manifest (server.Loader.Rebind) instead of loading the module again from
// the compiled-code cache. At most KeptVersions modules are kept, the
// most recently replaced; the oldest is closed when one more would exceed
// the bound, when a fresh copy of its version becomes active, and at
// Close. Only a module running optimized code is kept (README.md, "Tiered
// compilation"): one still on wazero's interpreter when it is replaced is
// closed as before.

// keptDrainWait bounds how long an activation waits for a kept version to
// finish draining (its last requests and sandboxes) before it loads the
// version afresh instead: an idle version drains in microseconds, and a
// load from the compiled-code cache costs less than a longer wait.
const keptDrainWait = 200 * time.Millisecond

// keptVersion is a replaced version whose module is kept, under Admin.mu.
type keptVersion struct {
	n       int             // the stored version number
	v       *server.Version // the replaced Version, drained or draining
	drained chan struct{}   // closed once v has drained (and been trimmed)
	evicted bool            // left the list while draining: the drain closes the module
}

// retire retires old, replaced on the server by stored version active:
// its module is kept when the bound allows (see above), else closed after
// the drain as server.Retire does. a.mu must be held.
func (a *Admin) retire(old *server.Version, active int) {
	n, err := strconv.Atoi(old.ID)
	keep := err == nil && n > 0 && n != active && a.cfg.KeptVersions > 0 && !a.keptClosed &&
		old.Tier().Tier == engine.TierOptimized
	a.retires.Add(1)
	if !keep {
		go func() {
			defer a.retires.Done()
			if err := server.Retire(context.Background(), old); err != nil {
				a.log.Warn("closing replaced version", "version", old.ID, "err", err)
			}
		}()
		return
	}
	e := &keptVersion{n: n, v: old, drained: make(chan struct{})}
	a.kept = append(a.kept, e)
	go func() {
		defer a.retires.Done()
		server.Drain(old)
		if t, ok := old.Module.(engine.Trimmer); ok {
			t.Trim(context.Background())
		}
		a.mu.Lock()
		close(e.drained)
		evicted := e.evicted
		a.mu.Unlock()
		if evicted {
			a.closeKept(e, "evicted while it drained")
		}
	}()
}

// evictKept takes off the list the kept modules beyond the bound (the
// oldest first), those of stored version active (a fresh copy of it
// serves) and, after Close, all; a.mu must be held. It returns those
// drained, for the caller to close (closeKept) once it has let a.mu go; a
// module still draining is closed by its drain.
func (a *Admin) evictKept(active int) (closeNow []*keptVersion) {
	var out []*keptVersion
	a.kept = slices.DeleteFunc(a.kept, func(e *keptVersion) bool {
		if e.n == active {
			out = append(out, e)
			return true
		}
		return false
	})
	// a.kept is in replacement order: the oldest first.
	for len(a.kept) > max(a.cfg.KeptVersions, 0) || a.keptClosed && len(a.kept) > 0 {
		out = append(out, a.kept[0])
		a.kept = a.kept[1:]
	}
	// A version kept twice (replaced, activated afresh while it drained,
	// replaced again): the newer copy stays.
	seen := map[int]bool{}
	for i := len(a.kept) - 1; i >= 0; i-- {
		e := a.kept[i]
		if seen[e.n] {
			out = append(out, e)
			a.kept = slices.Delete(a.kept, i, i+1)
			continue
		}
		seen[e.n] = true
	}
	for _, e := range out {
		select {
		case <-e.drained:
			closeNow = append(closeNow, e)
		default:
			e.evicted = true
		}
	}
	return closeNow
}

// closeKept closes a kept module that left the list.
func (a *Admin) closeKept(e *keptVersion, why string) {
	if err := e.v.Module.Close(context.Background()); err != nil {
		a.log.Warn("closing a kept version", "version", e.n, "err", err)
		return
	}
	a.log.Debug("closed a kept version", "version", e.n, "why", why)
}

// takeKept returns the kept, drained module of stored version n and
// takes it off the list, waiting (bounded by keptDrainWait and ctx) for a
// drain still under way; nil when none is kept or the drain did not end
// in time.
func (a *Admin) takeKept(ctx context.Context, n int) *server.Version {
	a.mu.Lock()
	i := slices.IndexFunc(a.kept, func(e *keptVersion) bool { return e.n == n })
	if i < 0 {
		a.mu.Unlock()
		return nil
	}
	e := a.kept[i]
	a.mu.Unlock()
	t := time.NewTimer(keptDrainWait)
	defer t.Stop()
	select {
	case <-e.drained:
	case <-t.C:
		return nil
	case <-ctx.Done():
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	i = slices.Index(a.kept, e)
	if i < 0 {
		return nil // evicted meanwhile, or taken by another activation
	}
	a.kept = slices.Delete(a.kept, i, i+1)
	return e.v
}

// keptNumbers returns the stored versions whose modules are kept and
// drained, for GET /v1/modules.
func (a *Admin) keptNumbers() map[int]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[int]bool{}
	for _, e := range a.kept {
		select {
		case <-e.drained:
			out[e.n] = true
		default:
		}
	}
	return out
}

// loadOrKept returns stored version n ready to activate: its kept module
// rebound to a new Env from its stored manifest (fromKept true), else
// compiled again (load). Errors: the store's, the load's, or the Env's
// (the kept module is then closed).
func (a *Admin) loadOrKept(ctx context.Context, n int) (v *server.Version, fromKept bool, err error) {
	if old := a.takeKept(ctx, n); old != nil {
		_, m, err := a.cfg.Store.Manifest(n)
		if err == nil {
			v, err = a.cfg.Loader.Rebind(strconv.Itoa(n), old, m)
		}
		if err != nil {
			old.Module.Close(context.Background())
			return nil, false, fmt.Errorf("version %d: %w", n, err)
		}
		return v, true, nil
	}
	v, err = a.load(ctx, n)
	return v, false, err
}

// closeKeptAll closes every kept module (Close): those drained now, the
// others when their drain ends; no module is kept after it.
func (a *Admin) closeKeptAll() {
	a.mu.Lock()
	a.keptClosed = true
	out := a.evictKept(0)
	a.mu.Unlock()
	for _, e := range out {
		a.closeKept(e, "host closing")
	}
}
