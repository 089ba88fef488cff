// Package fleet joins edgehost nodes into a fleet over NATS JetStream
// (README.md, "Fleet"): deployed versions live in a JetStream object
// store, the active version of a service is a KV entry changed with
// compare-and-set on its revision, guests' KV stores are JetStream KV
// buckets, and purges are messages on a stream every node consumes.
//
// A Fleet is one node's connection. It never blocks a caller for long
// while NATS is unreachable: calls fail with an error wrapping
// ErrUnavailable (checked before each call, and bounded by
// Config.OpTimeout), and the watchers (Watch, Purges) retry until their
// context ends, catching up once the link is back.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edgehost/edgehost/internal/kvstore"
)

// Errors of fleet calls; test with errors.Is.
var (
	// ErrUnavailable: the node is not connected to NATS, or NATS did not
	// answer within Config.OpTimeout.
	ErrUnavailable = errors.New("fleet: NATS unavailable")
	// ErrConflict: an activation lost a compare-and-set race: the active
	// version's revision is not the one the caller expected.
	ErrConflict = errors.New("fleet: the active version changed concurrently")
	// ErrNotFound: no such version in the fleet's object store.
	ErrNotFound = errors.New("fleet: no such version")
)

// DefaultOpTimeout bounds one NATS call when Config.OpTimeout is 0.
const DefaultOpTimeout = 2 * time.Second

// DefaultService is the service name when Config.Service is "".
const DefaultService = "default"

// Names of the JetStream assets shared by every node.
const (
	deployBucket = "edgehost_deploy"  // KV: active.SVC, seq.SVC
	nodesBucket  = "edgehost_nodes"   // KV: SVC.NODE -> NodeStatus
	moduleStore  = "edgehost_modules" // object store: SVC/N -> the upload
	purgeStream  = "EDGEHOST_PURGE"   // stream of edgehost.purge.SVC
	kvPrefix     = "edgehost_kv_"     // KV bucket of a guest KV store
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Config says how a node joins the fleet. URLs and Node are required.
type Config struct {
	// URLs are the NATS servers, nats://host:port (or tls://); any one
	// reachable is enough, the client learns the others.
	URLs []string
	// CredsFile is a NATS credentials file (JWT and seed), NKeyFile an
	// NKey seed file; User and Password, or Token, are the other ways
	// nats.go authenticates (a URL may also hold user:password@).
	CredsFile, NKeyFile   string
	User, Password, Token string
	// TLSCA is a PEM file of CAs to trust; TLSCert and TLSKey a client
	// certificate and its key (PEM files). Either turns TLS on.
	TLSCA, TLSCert, TLSKey string
	// Replicas is the replica count of the streams, buckets and object
	// store this node creates (1 to 5; 0 means 1). Use 3 on a
	// three-server cluster so that losing one server loses nothing.
	Replicas int
	// Node names this node in GET /v1/fleet ([A-Za-z0-9_-], at most 64).
	Node string
	// Service names the service the fleet serves (same rule as Node;
	// "" is DefaultService). Nodes of one service share its versions.
	Service string
	// OpTimeout bounds one NATS call; 0 is DefaultOpTimeout.
	OpTimeout time.Duration
	// StaleAfter is the age (of its last report) past which GET
	// /v1/fleet marks a node stale; 0 is DefaultStaleAfter.
	StaleAfter time.Duration
	// NoDiscovery keeps the client on URLs, ignoring the servers the
	// cluster advertises (nats.IgnoreDiscoveredServers).
	NoDiscovery bool
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
}

// Fleet is one node's connection to the fleet. Its methods are safe for
// concurrent use.
type Fleet struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream

	mu      sync.Mutex
	buckets map[string]jetstream.KeyValue
	objects jetstream.ObjectStore
	links   chan struct{} // closed and replaced on every (re)connect
	kv      *KV
}

// Connect starts the node's connection and returns at once: when no
// server is reachable yet, the client keeps trying in the background and
// calls fail with ErrUnavailable meanwhile (a node started while NATS is
// down serves its local copy; README.md, "Fleet"). Errors: a bad
// setting (no URL, a bad name, unreadable key files).
func Connect(cfg Config) (*Fleet, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("fleet: no NATS URL")
	}
	if cfg.Service == "" {
		cfg.Service = DefaultService
	}
	if !nameRE.MatchString(cfg.Node) {
		return nil, fmt.Errorf("fleet: node name %q: want 1 to 64 of A-Z a-z 0-9 _ -", cfg.Node)
	}
	if !nameRE.MatchString(cfg.Service) {
		return nil, fmt.Errorf("fleet: service name %q: want 1 to 64 of A-Z a-z 0-9 _ -", cfg.Service)
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("fleet: %d replicas: want 1 to 5", cfg.Replicas)
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	f := &Fleet{cfg: cfg, log: cfg.Logger, buckets: map[string]jetstream.KeyValue{}, links: make(chan struct{})}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.kv = &KV{f: f, pending: map[string][]kvstore.Seed{}}
	opts := []nats.Option{
		nats.Name("edgehost " + cfg.Node),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(time.Second),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(nc *nats.Conn) { f.linked(nc, "connected") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { f.linked(nc, "reconnected") }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { f.log.Warn("fleet: NATS link lost", "err", err) }),
	}
	if cfg.NoDiscovery {
		opts = append(opts, nats.IgnoreDiscoveredServers())
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("fleet: nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("fleet: %w", err)
	}
	f.nc, f.js = nc, js
	return f, nil
}

// linked wakes the watchers after a (re)connect.
func (f *Fleet) linked(nc *nats.Conn, what string) {
	f.log.Info("fleet: NATS link up", "event", what, "server", nc.ConnectedUrlRedacted())
	f.mu.Lock()
	close(f.links)
	f.links = make(chan struct{})
	f.mu.Unlock()
}

// relinked returns a channel closed at the next (re)connect.
func (f *Fleet) relinked() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.links
}

// Close drops the connection.
func (f *Fleet) Close() { f.nc.Close() }

// Node returns this node's name, Service the service's.
func (f *Fleet) Node() string    { return f.cfg.Node }
func (f *Fleet) Service() string { return f.cfg.Service }

// Connected reports whether the node's NATS link is up now.
func (f *Fleet) Connected() bool { return f.nc.IsConnected() }

// op returns a context for one NATS call, or ErrUnavailable when the
// link is down.
func (f *Fleet) op(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if !f.nc.IsConnected() {
		return nil, nil, fmt.Errorf("%w: not connected", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	return ctx, cancel, nil
}

// createCtx bounds the creation of a stream, bucket or object store:
// 10 s, or OpTimeout when longer, independent of the caller's bound.
func (f *Fleet) createCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), max(10*time.Second, f.cfg.OpTimeout))
}

// attempts runs fn with a 1 s bound per attempt until it succeeds, fails
// with an error other than a timeout or missing responders, or ctx ends:
// right after a replicated stream is made, requests to it go unanswered
// until its leader is elected.
func attempts(ctx context.Context, fn func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unavailable wraps a NATS failure that means "could not reach it".
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// bucket returns KV bucket name, creating it when missing.
func (f *Fleet) bucket(ctx context.Context, name string, history uint8) (jetstream.KeyValue, error) {
	f.mu.Lock()
	kv, ok := f.buckets[name]
	f.mu.Unlock()
	if ok {
		return kv, nil
	}
	// Creating replicated assets can take longer than one call's bound
	// (a leader election); it happens once per bucket per node.
	cctx, cancel := f.createCtx(ctx)
	defer cancel()
	// Look first, create only when missing: concurrent updates of one
	// replicated stream's config stall.
	err := attempts(cctx, func(ctx context.Context) (err error) {
		kv, err = f.js.KeyValue(ctx, name)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = f.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: history, Replicas: f.cfg.Replicas})
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = f.js.KeyValue(ctx, name)
			}
		}
		return err
	})
	// A new replicated bucket answers reads a moment after it exists.
	for err == nil {
		_, gerr := kv.Get(cctx, "ready")
		if gerr == nil || errors.Is(gerr, jetstream.ErrKeyNotFound) || errors.Is(gerr, jetstream.ErrKeyDeleted) {
			break
		}
		if cctx.Err() != nil {
			err = gerr
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("fleet: bucket %s: %w", name, err))
	}
	f.mu.Lock()
	f.buckets[name] = kv
	f.mu.Unlock()
	return kv, nil
}

// existingBucket returns KV bucket name if it exists (ErrBucketNotFound
// otherwise).
func (f *Fleet) existingBucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	f.mu.Lock()
	kv, ok := f.buckets[name]
	f.mu.Unlock()
	if ok {
		return kv, nil
	}
	kv, err := f.js.KeyValue(ctx, name)
	if err != nil {
		return nil, unavailable(err)
	}
	f.mu.Lock()
	f.buckets[name] = kv
	f.mu.Unlock()
	return kv, nil
}

func (f *Fleet) objectStore(ctx context.Context) (jetstream.ObjectStore, error) {
	f.mu.Lock()
	o := f.objects
	f.mu.Unlock()
	if o != nil {
		return o, nil
	}
	cctx, cancel := f.createCtx(ctx)
	defer cancel()
	err := attempts(cctx, func(ctx context.Context) (err error) {
		o, err = f.js.ObjectStore(ctx, moduleStore)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			o, err = f.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: moduleStore, Replicas: f.cfg.Replicas})
			if errors.Is(err, jetstream.ErrBucketExists) {
				o, err = f.js.ObjectStore(ctx, moduleStore)
			}
		}
		return err
	})
	if err != nil {
		return nil, unavailable(fmt.Errorf("fleet: object store: %w", err))
	}
	f.mu.Lock()
	f.objects = o
	f.mu.Unlock()
	return o, nil
}
