package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Active is the service's active version as the fleet's KV entry holds
// it: the version number and the entry's revision (the value
// compare-and-set checks; 0 when nothing was ever activated).
type Active struct {
	Version  int       `json:"version"`
	Revision uint64    `json:"revision"`
	By       string    `json:"by,omitempty"` // the node that activated it
	At       time.Time `json:"at"`
}

// NodeStatus is one node as GET /v1/fleet reports it: the version it
// serves (0: none of the fleet's) and since when, and when it last
// reported (every few seconds while connected).
type NodeStatus struct {
	Node     string    `json:"node"`
	Version  int       `json:"version"`
	Since    time.Time `json:"since"`
	Updated  time.Time `json:"updated"`
	AdminURL string    `json:"admin_url,omitempty"`
	// Stale is set by Nodes when Updated is older than the reader's
	// Config.StaleAfter: the node stopped reporting (stopped, or cut
	// off from NATS). A node that reports again is no longer stale.
	Stale bool `json:"stale"`
}

// ReportInterval is how often a node reports its status (README.md,
// "Fleet": nodes report every 2 s).
const ReportInterval = 2 * time.Second

// DefaultStaleAfter is Config.StaleAfter's default: 10 s, five missed
// reports.
const DefaultStaleAfter = 5 * ReportInterval

func (f *Fleet) activeKey() string { return "active." + f.cfg.Service }
func (f *Fleet) seqKey() string    { return "seq." + f.cfg.Service }
func (f *Fleet) object(n int) string {
	return f.cfg.Service + "/" + strconv.Itoa(n)
}

// Publish stores upload (a module or package exactly as received) as the
// service's next version and returns its number: one more than the last
// number handed out, taken with compare-and-set so concurrent publishes
// get different numbers. Errors: ErrUnavailable, NATS errors.
func (f *Fleet) Publish(ctx context.Context, upload []byte) (int, error) {
	ctx, cancel, err := f.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	kv, err := f.bucket(ctx, deployBucket, 8)
	if err != nil {
		return 0, err
	}
	n := 0
	for attempt := 0; ; attempt++ {
		var e jetstream.KeyValueEntry
		err := whileNoResponders(ctx, func() (err error) { e, err = kv.Get(ctx, f.seqKey()); return err })
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			n = 1
			err = whileNoResponders(ctx, func() error { _, err := kv.Create(ctx, f.seqKey(), []byte("1")); return err })
		case err == nil:
			last, _ := strconv.Atoi(string(e.Value()))
			n = last + 1
			err = whileNoResponders(ctx, func() error {
				_, err := kv.Update(ctx, f.seqKey(), []byte(strconv.Itoa(n)), e.Revision())
				return err
			})
		}
		if err == nil {
			break
		}
		if !isConflict(err) || attempt == 20 {
			return 0, unavailable(fmt.Errorf("fleet: numbering the version: %w", err))
		}
	}
	o, err := f.objectStore(ctx)
	if err != nil {
		return 0, err
	}
	if err := whileNoResponders(ctx, func() error { _, err := o.PutBytes(ctx, f.object(n), upload); return err }); err != nil {
		return 0, unavailable(fmt.Errorf("fleet: storing version %d: %w", n, err))
	}
	return n, nil
}

// whileNoResponders runs fn again, every 50 ms until ctx ends, while it
// fails with nats.ErrNoResponders: nobody received the request (a stream
// whose leader is being elected after a NATS server was lost), so a
// retry cannot apply a write twice. Other errors, timeouts included (a
// timed-out write may have been applied), return at once.
func whileNoResponders(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, nats.ErrNoResponders) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// Fetch returns version n's upload. Errors: ErrNotFound, ErrUnavailable.
func (f *Fleet) Fetch(ctx context.Context, n int) ([]byte, error) {
	ctx, cancel, err := f.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	o, err := f.objectStore(ctx)
	if err != nil {
		return nil, err
	}
	var b []byte
	err = attempts(ctx, func(ctx context.Context) (err error) {
		b, err = o.GetBytes(ctx, f.object(n))
		return err
	})
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: version %d", ErrNotFound, n)
	}
	return b, unavailable(err)
}

// Active returns the service's active version (Version 0 when none).
// Errors: ErrUnavailable.
func (f *Fleet) Active(ctx context.Context) (Active, error) {
	ctx, cancel, err := f.op(ctx)
	if err != nil {
		return Active{}, err
	}
	defer cancel()
	kv, err := f.bucket(ctx, deployBucket, 8)
	if err != nil {
		return Active{}, err
	}
	e, err := kv.Get(ctx, f.activeKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Active{}, nil
	}
	if err != nil {
		return Active{}, unavailable(err)
	}
	return decodeActive(e)
}

func decodeActive(e jetstream.KeyValueEntry) (Active, error) {
	var a Active
	if err := json.Unmarshal(e.Value(), &a); err != nil || a.Version <= 0 {
		return Active{}, fmt.Errorf("fleet: active entry %q unreadable", e.Value())
	}
	a.Revision = e.Revision()
	return a, nil
}

// Activate makes version n the service's active version with
// compare-and-set: when ifRevision is given, the entry must still be at
// that revision (0: never set); otherwise at the revision read just
// before. It returns the new entry. The caller checks that n was
// published (Fetch). Errors: ErrConflict (wrapped, naming the revision
// found) when another activation came first, ErrUnavailable.
func (f *Fleet) Activate(ctx context.Context, n int, ifRevision *uint64) (Active, error) {
	ctx, cancel, err := f.op(ctx)
	if err != nil {
		return Active{}, err
	}
	defer cancel()
	kv, err := f.bucket(ctx, deployBucket, 8)
	if err != nil {
		return Active{}, err
	}
	var rev uint64
	if ifRevision != nil {
		rev = *ifRevision
	} else {
		var e jetstream.KeyValueEntry
		err := whileNoResponders(ctx, func() (err error) { e, err = kv.Get(ctx, f.activeKey()); return err })
		switch {
		case err == nil:
			rev = e.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return Active{}, unavailable(err)
		}
	}
	a := Active{Version: n, By: f.cfg.Node, At: time.Now().UTC()}
	val, _ := json.Marshal(a)
	err = whileNoResponders(ctx, func() (err error) {
		if rev == 0 {
			a.Revision, err = kv.Create(ctx, f.activeKey(), val)
		} else {
			a.Revision, err = kv.Update(ctx, f.activeKey(), val, rev)
		}
		return err
	})
	if isConflict(err) {
		cur := "none"
		if e, gerr := kv.Get(ctx, f.activeKey()); gerr == nil {
			cur = strconv.FormatUint(e.Revision(), 10)
		}
		return Active{}, fmt.Errorf("%w: activating version %d expected revision %d, the entry is at revision %s", ErrConflict, n, rev, cur)
	}
	if err != nil {
		return Active{}, unavailable(err)
	}
	return a, nil
}

// Watch calls apply with the service's active version each time it
// changes (and once at start when one is set), until ctx ends. A failed
// apply is retried after 250 ms, or at the next change. While the link is down
// it waits; at every (re)connect, and every resync interval (2 s), it
// reads the entry again, so a node cut off catches up once back.
func (f *Fleet) Watch(ctx context.Context, apply func(context.Context, Active) error) {
	var applied uint64
	var retry <-chan time.Time // set after a failed apply
	var failed Active
	try := func(a Active) {
		if a.Version == 0 || a.Revision <= applied {
			return
		}
		if err := apply(ctx, a); err != nil {
			f.log.Warn("fleet: activating the fleet's version failed; retrying", "version", a.Version, "err", err)
			failed, retry = a, time.After(250*time.Millisecond)
			return
		}
		applied, retry = a.Revision, nil
	}
	resync := time.NewTicker(2 * time.Second)
	defer resync.Stop()
	for ctx.Err() == nil {
		relinked := f.relinked()
		if a, err := f.Active(ctx); err == nil {
			try(a)
		} else {
			f.log.Debug("fleet: reading the active version", "err", err)
		}
		var updates <-chan jetstream.KeyValueEntry
		var w jetstream.KeyWatcher
		if f.nc.IsConnected() {
			if kv, err := f.bucket(ctx, deployBucket, 8); err == nil {
				if w, err = kv.Watch(ctx, f.activeKey(), jetstream.UpdatesOnly()); err == nil {
					updates = w.Updates()
				}
			}
		}
	watching:
		for {
			select {
			case <-ctx.Done():
				break watching
			case <-relinked:
				break watching
			case <-retry:
				retry = nil
				try(failed)
			case <-resync.C:
				if a, err := f.Active(ctx); err == nil {
					try(a)
				} else {
					f.log.Debug("fleet: reading the active version", "err", err)
				}
				if w == nil {
					break watching
				}
			case e, ok := <-updates:
				if !ok {
					break watching
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue
				}
				if a, err := decodeActive(e); err == nil {
					try(a)
				}
			}
		}
		if w != nil {
			w.Stop()
		}
	}
}

func (f *Fleet) nodeKey() string { return f.cfg.Service + "." + f.cfg.Node }

// Report records this node's status (Updated is set to now). Errors:
// ErrUnavailable.
func (f *Fleet) Report(ctx context.Context, s NodeStatus) error {
	ctx, cancel, err := f.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	kv, err := f.bucket(ctx, nodesBucket, 1)
	if err != nil {
		return err
	}
	s.Node, s.Updated, s.Stale = f.cfg.Node, time.Now().UTC(), false
	b, _ := json.Marshal(s)
	_, err = kv.Put(ctx, f.nodeKey(), b)
	return unavailable(err)
}

// Nodes returns the status every node of the service last reported,
// by name, each marked Stale when its last report is older than
// Config.StaleAfter. Errors: ErrUnavailable.
func (f *Fleet) Nodes(ctx context.Context) ([]NodeStatus, error) {
	ctx, cancel, err := f.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	kv, err := f.bucket(ctx, nodesBucket, 1)
	if err != nil {
		return nil, err
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []NodeStatus{}, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	out := []NodeStatus{}
	for _, k := range keys {
		if !strings.HasPrefix(k, f.cfg.Service+".") {
			continue
		}
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		var s NodeStatus
		if json.Unmarshal(e.Value(), &s) == nil {
			s.Stale = time.Since(s.Updated) > f.cfg.StaleAfter
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}
