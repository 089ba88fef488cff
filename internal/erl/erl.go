// Package erl is Compute's edge rate limiting (fastly_erl, abi/README.md):
// rate counters and penalty boxes shared by every sandbox of a host and
// safe for concurrent use.
//
// A rate counter keeps, per entry, event counts in one-second buckets
// for the last 64 seconds. The rate over a window of 1, 10 or 60 s is the
// sum of the window's last buckets (the current second included) divided
// by the window. The count over 10 to 60 s is the sum of that many
// ten-second buckets aligned to the wall clock (:00, :10, ...), the
// current one included, as Fastly's SDKs document. A penalty box keeps
// entries until their TTL (whole minutes, 1 to 60) runs out.
//
// Both have a fixed capacity per name (Capacity): a full rate counter
// drops its least recently incremented entry, a full penalty box the
// entry closest to expiry, as on Compute. At most MaxNames counters and
// boxes exist at once; past that, opening a new name fails.
package erl

import (
	"container/heap"
	"container/list"
	"errors"
	"fmt"
	"hash/maphash"
	"sort"
	"sync"
	"time"
)

// Limits of the ABI's arguments, as Fastly's SDKs document them.
const (
	// MaxNameLen caps rate counter, penalty box and entry names (bytes).
	MaxNameLen = 64
	// MaxDelta is the largest increment of one call.
	MaxDelta = 1000
	// MinLimit and MaxLimit bound check_rate's limit (events per second).
	MinLimit, MaxLimit = 10, 10000
	// MinTTL and MaxTTL bound a penalty box TTL; it is truncated to whole
	// minutes.
	MinTTL, MaxTTL = time.Minute, time.Hour
)

// Capacity is the number of entries one rate counter or penalty box
// holds; MaxNames the number of rate counters plus penalty boxes.
const (
	Capacity = 1 << 16
	MaxNames = 1 << 12
)

// shards splits each counter and box so that concurrent sandboxes
// touching different entries rarely share a lock.
const shards = 16

const buckets = 64 // one-second buckets kept per entry

// Errors. ErrInvalid wraps every argument that is out of range.
var (
	ErrInvalid = errors.New("invalid argument")
	ErrTooMany = errors.New("too many rate counters and penalty boxes")
)

// Store holds every rate counter and penalty box of a host.
type Store struct {
	now  func() time.Time
	seed maphash.Seed

	mu       sync.RWMutex
	counters map[string]*counter
	boxes    map[string]*box
}

// New returns an empty Store reading time from now (nil means time.Now).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, seed: maphash.MakeSeed(), counters: map[string]*counter{}, boxes: map[string]*box{}}
}

// CheckName reports whether s may name a rate counter, penalty box or
// entry: 1 to MaxNameLen bytes. Errors wrap ErrInvalid.
func CheckName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s name", ErrInvalid, what)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s name of %d bytes (at most %d)", ErrInvalid, what, len(s), MaxNameLen)
	}
	return nil
}

// Window checks a rate window in seconds: 1, 10 or 60.
func Window(sec uint32) error {
	switch sec {
	case 1, 10, 60:
		return nil
	}
	return fmt.Errorf("%w: rate window %d s (want 1, 10 or 60)", ErrInvalid, sec)
}

// Duration checks a count duration in seconds: 10, 20, 30, 40, 50 or 60.
func Duration(sec uint32) error {
	if sec >= 10 && sec <= 60 && sec%10 == 0 {
		return nil
	}
	return fmt.Errorf("%w: count duration %d s (want 10, 20, 30, 40, 50 or 60)", ErrInvalid, sec)
}

// TTL checks a penalty box TTL in seconds (60 to 3600) and truncates it
// to whole minutes.
func TTL(sec uint32) (time.Duration, error) {
	d := time.Duration(sec) * time.Second
	if d < MinTTL || d > MaxTTL {
		return 0, fmt.Errorf("%w: penalty box TTL %d s (want 60 to 3600)", ErrInvalid, sec)
	}
	return d.Truncate(time.Minute), nil
}

func checkDelta(delta uint32) error {
	if delta > MaxDelta {
		return fmt.Errorf("%w: delta %d (at most %d)", ErrInvalid, delta, MaxDelta)
	}
	return nil
}

func (s *Store) shard(entry string) int {
	return int(maphash.String(s.seed, entry) % shards)
}

func (s *Store) counter(name string, create bool) (*counter, error) {
	s.mu.RLock()
	c := s.counters[name]
	s.mu.RUnlock()
	if c != nil || !create {
		return c, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c = s.counters[name]; c != nil {
		return c, nil
	}
	if len(s.counters)+len(s.boxes) >= MaxNames {
		return nil, fmt.Errorf("%w: %d already", ErrTooMany, MaxNames)
	}
	c = newCounter()
	s.counters[name] = c
	return c, nil
}

func (s *Store) box(name string, create bool) (*box, error) {
	s.mu.RLock()
	b := s.boxes[name]
	s.mu.RUnlock()
	if b != nil || !create {
		return b, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.boxes[name]; b != nil {
		return b, nil
	}
	if len(s.counters)+len(s.boxes) >= MaxNames {
		return nil, fmt.Errorf("%w: %d already", ErrTooMany, MaxNames)
	}
	b = newBox()
	s.boxes[name] = b
	return b, nil
}

// Increment adds delta (0 to MaxDelta) to entry's count in rate counter
// rc, creating either. Errors: ErrInvalid, ErrTooMany.
func (s *Store) Increment(rc, entry string, delta uint32) error {
	if err := s.checkPair("rate counter", rc, entry); err != nil {
		return err
	}
	if err := checkDelta(delta); err != nil {
		return err
	}
	c, err := s.counter(rc, true)
	if err != nil {
		return err
	}
	c.shards[s.shard(entry)].add(entry, s.now().Unix(), delta)
	return nil
}

// Rate returns entry's events per second over window (1, 10 or 60 s),
// rounded down; 0 for an entry or counter never incremented.
func (s *Store) Rate(rc, entry string, window uint32) (uint32, error) {
	if err := s.checkPair("rate counter", rc, entry); err != nil {
		return 0, err
	}
	if err := Window(window); err != nil {
		return 0, err
	}
	c, _ := s.counter(rc, false)
	if c == nil {
		return 0, nil
	}
	now := s.now().Unix()
	return uint32(c.shards[s.shard(entry)].sum(entry, now-int64(window)+1, now) / uint64(window)), nil
}

// Count returns entry's events in the last duration/10 ten-second
// buckets (duration 10 to 60 s), the current bucket included.
func (s *Store) Count(rc, entry string, duration uint32) (uint32, error) {
	if err := s.checkPair("rate counter", rc, entry); err != nil {
		return 0, err
	}
	if err := Duration(duration); err != nil {
		return 0, err
	}
	c, _ := s.counter(rc, false)
	if c == nil {
		return 0, nil
	}
	now := s.now().Unix()
	from := now - now%10 - int64(duration) + 10
	return satU32(c.shards[s.shard(entry)].sum(entry, from, now)), nil
}

// PenaltyBoxAdd puts entry in penalty box pb for ttl seconds (60 to
// 3600, truncated to minutes), replacing an earlier TTL.
func (s *Store) PenaltyBoxAdd(pb, entry string, ttlSec uint32) error {
	if err := s.checkPair("penalty box", pb, entry); err != nil {
		return err
	}
	ttl, err := TTL(ttlSec)
	if err != nil {
		return err
	}
	b, err := s.box(pb, true)
	if err != nil {
		return err
	}
	now := s.now()
	b.shards[s.shard(entry)].add(entry, now.Add(ttl), now)
	return nil
}

// PenaltyBoxHas reports whether entry is in penalty box pb now.
func (s *Store) PenaltyBoxHas(pb, entry string) (bool, error) {
	if err := s.checkPair("penalty box", pb, entry); err != nil {
		return false, err
	}
	b, _ := s.box(pb, false)
	if b == nil {
		return false, nil
	}
	return b.shards[s.shard(entry)].has(entry, s.now()), nil
}

// CheckRate is check_rate: it adds delta to entry in rate counter rc,
// and when entry's rate over window then exceeds limit (events per
// second, MinLimit to MaxLimit) puts it in penalty box pb for ttl
// seconds. It reports whether entry is in the penalty box (blocked),
// whether it was already or has just been put there.
func (s *Store) CheckRate(rc, entry string, delta, window, limit uint32, pb string, ttlSec uint32) (blocked bool, err error) {
	if err := CheckName("penalty box", pb); err != nil {
		return false, err
	}
	if err := Window(window); err != nil {
		return false, err
	}
	if limit < MinLimit || limit > MaxLimit {
		return false, fmt.Errorf("%w: limit %d per second (want %d to %d)", ErrInvalid, limit, MinLimit, MaxLimit)
	}
	if _, err := TTL(ttlSec); err != nil {
		return false, err
	}
	if err := s.checkPair("rate counter", rc, entry); err != nil {
		return false, err
	}
	if err := checkDelta(delta); err != nil {
		return false, err
	}
	c, err := s.counter(rc, true)
	if err != nil {
		return false, err
	}
	// One lock of the entry's shard for the increment and the rate.
	now := s.now()
	sec, sh := now.Unix(), s.shard(entry)
	sum := c.shards[sh].addSum(entry, sec, delta, sec-int64(window)+1)
	if b, _ := s.box(pb, false); b != nil && b.shards[sh].has(entry, now) {
		return true, nil
	}
	if sum/uint64(window) <= uint64(limit) {
		return false, nil
	}
	return true, s.PenaltyBoxAdd(pb, entry, ttlSec)
}

func (s *Store) checkPair(what, name, entry string) error {
	if err := CheckName(what, name); err != nil {
		return err
	}
	return CheckName("entry", entry)
}

// Stats is one rate counter or penalty box as the admin API lists it.
type Stats struct {
	Name    string `json:"name"`
	Entries int    `json:"entries"`
}

// Snapshot lists the rate counters and penalty boxes with their entry
// counts (penalty box entries not yet expired), sorted by name.
func (s *Store) Snapshot() (counters, boxes []Stats) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	counters, boxes = []Stats{}, []Stats{}
	for n, c := range s.counters {
		st := Stats{Name: n}
		for i := range c.shards {
			sh := &c.shards[i]
			sh.mu.Lock()
			st.Entries += len(sh.m)
			sh.mu.Unlock()
		}
		counters = append(counters, st)
	}
	for n, b := range s.boxes {
		st := Stats{Name: n}
		for i := range b.shards {
			st.Entries += b.shards[i].live(now)
		}
		boxes = append(boxes, st)
	}
	byName := func(l []Stats) { sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name }) }
	byName(counters)
	byName(boxes)
	return counters, boxes
}

func satU32(v uint64) uint32 {
	if v > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(v)
}

// counter is one rate counter.
type counter struct{ shards [shards]counterShard }

func newCounter() *counter {
	c := &counter{}
	for i := range c.shards {
		c.shards[i].m = map[string]*list.Element{}
		c.shards[i].lru.Init()
	}
	return c
}

type counterShard struct {
	mu  sync.Mutex
	m   map[string]*list.Element // -> *entryCounts, in lru
	lru list.List                // most recently incremented first
}

type entryCounts struct {
	name string
	sec  [buckets]int64 // the second each bucket counts, 0 when unused
	n    [buckets]uint64
}

func (sh *counterShard) add(entry string, now int64, delta uint32) {
	sh.addSum(entry, now, delta, now+1)
}

// addSum adds delta to entry's bucket of second now and returns the sum
// of its buckets from second from to now.
func (sh *counterShard) addSum(entry string, now int64, delta uint32, from int64) uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	el, ok := sh.m[entry]
	if ok {
		sh.lru.MoveToFront(el)
	} else {
		if len(sh.m) >= Capacity/shards {
			old := sh.lru.Back()
			sh.lru.Remove(old)
			delete(sh.m, old.Value.(*entryCounts).name)
		}
		el = sh.lru.PushFront(&entryCounts{name: entry})
		sh.m[entry] = el
	}
	e := el.Value.(*entryCounts)
	i := now % buckets
	if e.sec[i] != now {
		e.sec[i], e.n[i] = now, 0
	}
	e.n[i] += uint64(delta)
	if from > now {
		return 0
	}
	return e.sumLocked(from, now)
}

// sum adds the buckets of seconds from..to (inclusive).
func (sh *counterShard) sum(entry string, from, to int64) uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	el, ok := sh.m[entry]
	if !ok {
		return 0
	}
	return el.Value.(*entryCounts).sumLocked(from, to)
}

func (e *entryCounts) sumLocked(from, to int64) uint64 {
	var total uint64
	for i := range e.sec {
		if t := e.sec[i]; t >= from && t <= to && t != 0 {
			total += e.n[i]
		}
	}
	return total
}

// box is one penalty box.
type box struct{ shards [shards]boxShard }

func newBox() *box {
	b := &box{}
	for i := range b.shards {
		b.shards[i].m = map[string]*boxEntry{}
	}
	return b
}

type boxShard struct {
	mu sync.Mutex
	m  map[string]*boxEntry
	h  expiryHeap // soonest expiry first
}

type boxEntry struct {
	name  string
	until time.Time
	index int
}

func (sh *boxShard) add(entry string, until, now time.Time) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[entry]; ok {
		e.until = until
		heap.Fix(&sh.h, e.index)
		return
	}
	sh.expire(now)
	if len(sh.m) >= Capacity/shards {
		e := heap.Pop(&sh.h).(*boxEntry)
		delete(sh.m, e.name)
	}
	e := &boxEntry{name: entry, until: until}
	heap.Push(&sh.h, e)
	sh.m[entry] = e
}

func (sh *boxShard) has(entry string, now time.Time) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[entry]
	return ok && now.Before(e.until)
}

func (sh *boxShard) live(now time.Time) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now)
	return len(sh.m)
}

// expire drops the entries whose TTL has run out; sh.mu is held.
func (sh *boxShard) expire(now time.Time) {
	for len(sh.h) > 0 && !now.Before(sh.h[0].until) {
		e := heap.Pop(&sh.h).(*boxEntry)
		delete(sh.m, e.name)
	}
}

type expiryHeap []*boxEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*boxEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
