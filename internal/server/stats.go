package server

// Sandboxes reports how many sandboxes are running a request now (each
// holds one of Config.MaxConcurrentSandboxes slots) and how many of the
// active version's are parked, waiting for a next request (README.md,
// "Sandbox reuse"), with the cap on running ones.
func (s *Server) Sandboxes() (running, parked, limit int) {
	running, limit = len(s.slots), cap(s.slots)
	if v := s.active.Load(); v != nil {
		v.mu.Lock()
		parked = len(v.parked)
		v.mu.Unlock()
	}
	return running, parked, limit
}
