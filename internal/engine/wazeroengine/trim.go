package wazeroengine

import (
	"context"

	"github.com/edgehost/edgehost/internal/engine"
)

var (
	_ engine.Trimmer = (*module)(nil)
	_ engine.Trimmer = (*tieredModule)(nil)
)

// Trim closes the module's kept reset instances and unmaps its kept memory
// reservations (engine.Trimmer); the compiled code, the memory image and
// the allocator stay, so later sandboxes instantiate anew and keep
// instances again.
func (m *module) Trim(ctx context.Context) {
	if m.reuse != nil {
		for _, in := range m.reuse.drop() {
			in.mod.Close(ctx) // frees its memory to the allocator
			m.putRunIO(in.rio)
		}
	}
	if m.mem != nil {
		m.mem.trim()
	}
}

// Trim trims the current tier (engine.Trimmer); a replaced tier was
// closed after its last sandbox.
func (t *tieredModule) Trim(ctx context.Context) {
	t.mu.Lock()
	r := t.cur
	t.mu.Unlock()
	if r != nil {
		r.m.Trim(ctx)
	}
}

// drop stops keeping the idle instances and returns them; instances put
// later are kept again.
func (k *instances) drop() []*instance {
	k.mu.Lock()
	defer k.mu.Unlock()
	idle := k.idle
	k.idle = nil
	return idle
}
