package server

import "time"

// Metrics receives one observation per downstream request. Config.Metrics
// nil turns observations off. Implementations must be safe for concurrent
// use and must not block.
type Metrics interface {
	// ObserveRequest is called once per request when its status is known:
	// status is the HTTP status the client got; sandbox is false for a
	// request refused before any sandbox ran (503, d about 0), and d is
	// then the sandbox's run time.
	ObserveRequest(status int, sandbox bool, d time.Duration)
}

// observe reports one request to s.cfg.Metrics, if any.
func (s *Server) observe(status int, sandbox bool, start time.Time) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.ObserveRequest(status, sandbox, time.Since(start))
	}
}
