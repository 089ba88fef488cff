package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Purge is one purge published to the fleet: of the objects carrying
// SurrogateKey (Soft: marked stale instead), or of every object (All).
type Purge struct {
	SurrogateKey string `json:"surrogate_key,omitempty"`
	Soft         bool   `json:"soft,omitempty"`
	All          bool   `json:"all,omitempty"`
	Origin       string `json:"origin"` // the node that published it
}

func (f *Fleet) purgeSubject() string { return "edgehost.purge." + f.cfg.Service }

func (f *Fleet) purgeStream(ctx context.Context) (jetstream.Stream, error) {
	ctx, cancel := f.createCtx(ctx)
	defer cancel()
	var s jetstream.Stream
	err := attempts(ctx, func(ctx context.Context) (err error) {
		s, err = f.js.Stream(ctx, purgeStream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			s, err = f.js.CreateStream(ctx, jetstream.StreamConfig{
				Name:     purgeStream,
				Subjects: []string{"edgehost.purge.>"},
				MaxAge:   time.Hour,
				Replicas: f.cfg.Replicas,
			})
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				s, err = f.js.Stream(ctx, purgeStream)
			}
		}
		return err
	})
	return s, unavailable(err)
}

// PublishPurge publishes p to every node of the service and returns once
// the purge stream stored it (a node cut off meanwhile applies it when
// back, for an hour). Errors: ErrUnavailable.
func (f *Fleet) PublishPurge(ctx context.Context, p Purge) error {
	ctx, cancel, err := f.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := f.purgeStream(ctx); err != nil {
		return fmt.Errorf("fleet: purge stream: %w", err)
	}
	p.Origin = f.cfg.Node
	b, _ := json.Marshal(p)
	if _, err := f.js.Publish(ctx, f.purgeSubject(), b); err != nil {
		return unavailable(fmt.Errorf("fleet: publishing the purge: %w", err))
	}
	return nil
}

// Purges calls apply for every purge another node publishes from the
// time it starts, until ctx ends. It waits while the link is down; its
// consumer resumes after the last purge it saw, so purges published
// while this node was cut off are applied when it is back.
func (f *Fleet) Purges(ctx context.Context, apply func(Purge)) {
	var last atomic.Uint64 // the stream sequence of the last purge seen
	for ctx.Err() == nil {
		relinked := f.relinked()
		if err := f.consumePurges(ctx, &last, apply); err != nil {
			f.log.Debug("fleet: purge consumer", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-relinked:
		case <-time.After(time.Second):
		}
	}
}

func (f *Fleet) consumePurges(ctx context.Context, last *atomic.Uint64, apply func(Purge)) error {
	octx, cancel, err := f.op(ctx)
	if err != nil {
		return err
	}
	s, err := f.purgeStream(octx)
	if err != nil {
		cancel()
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.purgeSubject()}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if n := last.Load(); n > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, n+1
	}
	c, err := s.OrderedConsumer(octx, cfg)
	cancel()
	if err != nil {
		return unavailable(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		if md, err := m.Metadata(); err == nil {
			last.Store(md.Sequence.Stream)
		}
		var p Purge
		if json.Unmarshal(m.Data(), &p) == nil && p.Origin != f.cfg.Node {
			apply(p)
		}
	})
	if err != nil {
		return unavailable(err)
	}
	// Stop waits for the consumer's reset, which waits for the link
	// while it is down: stop without waiting (Close ends it).
	defer func() { go cc.Stop() }()
	select {
	case <-ctx.Done():
	case <-cc.Closed():
	}
	return nil
}
