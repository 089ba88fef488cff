package admin

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/pool"
)

// Metrics are the host's Prometheus metrics, in a registry of their own
// (GET /metrics serves it):
//
//	edgehost_requests_total{status}                     downstream requests by HTTP status
//	edgehost_sandbox_duration_seconds                   histogram of sandbox run time
//	edgehost_hostcall_errors_total{module,name,status}  hostcalls that returned a status other than ok
//	edgehost_deploys_total{result}                      uploads: "ok", "rejected" (4xx), "failed" (5xx)
//	edgehost_activations_total                          version switches
//	edgehost_active_version                             the active version number (0: none or not a stored one)
//	edgehost_pool_*{pool,scheme,addr}                   per origin pool: connections opened, reused,
//	                                                    closed by reason, requests, retries, waits
//	                                                    (counters); in use and idle (gauges)
//
// plus the Go runtime and process collectors. Use it as server.Config.Metrics
// and its HostcallError as hostcall.Linker.OnError.
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	duration       prometheus.Histogram
	hostcallErrors *prometheus.CounterVec
	deploys        *prometheus.CounterVec
	activations    prometheus.Counter
	activeVersion  prometheus.Gauge
	traffic        traffic // the status page's request rate and status mix
	// byStatus caches requests' child counter of each status from 100
	// to 999 (statusCounter), so that a request does not hash its label.
	byStatus [900]atomic.Pointer[prometheus.Counter]
}

// NewMetrics returns the metrics; pools (may be nil) are read at each
// scrape.
func NewMetrics(pools *pool.Manager) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgehost_requests_total", Help: "Downstream requests answered, by HTTP status.",
		}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edgehost_sandbox_duration_seconds",
			Help:    "Wall-clock time of one sandbox, from start to its end.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms to about 16 s
		}),
		hostcallErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgehost_hostcall_errors_total", Help: "Hostcalls that returned a fastly_status other than ok.",
		}, []string{"module", "name", "status"}),
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgehost_deploys_total", Help: `Module uploads by result: "ok", "rejected" (bad input), "failed" (host error).`,
		}, []string{"result"}),
		activations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgehost_activations_total", Help: "Switches of the active version.",
		}),
		activeVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgehost_active_version", Help: "Number of the active stored version; 0 when none.",
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.hostcallErrors, m.deploys, m.activations, m.activeVersion,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pools != nil {
		m.reg.MustRegister(newPoolCollector(pools))
	}
	return m
}

// ObserveRequest implements server.Metrics.
func (m *Metrics) ObserveRequest(status int, sandbox bool, d time.Duration) {
	m.statusCounter(status).Inc()
	m.traffic.observe(time.Now(), status)
	if sandbox {
		m.duration.Observe(d.Seconds())
	}
}

// statusCounter returns the requests counter of status, from the cache
// for a three-digit status.
func (m *Metrics) statusCounter(status int) prometheus.Counter {
	if status < 100 || status > 999 {
		return m.requests.WithLabelValues(strconv.Itoa(status))
	}
	slot := &m.byStatus[status-100]
	if c := slot.Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(strconv.Itoa(status))
	slot.Store(&c) // a racing store holds the same child
	return c
}

// HostcallError counts one hostcall that returned status; it fits
// hostcall.Linker.OnError.
func (m *Metrics) HostcallError(module, name string, status abi.Status) {
	m.hostcallErrors.WithLabelValues(module, name, status.String()).Inc()
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *Metrics) deploy(result string) { m.deploys.WithLabelValues(result).Inc() }

func (m *Metrics) activated(version int) {
	m.activations.Inc()
	m.activeVersion.Set(float64(version))
}

// poolCollector reports pool.Manager.Pools() at each scrape.
type poolCollector struct {
	pools                                                         *pool.Manager
	opened, reused, closed, requests, retries, waits, inUse, idle *prometheus.Desc
}

func newPoolCollector(pools *pool.Manager) *poolCollector {
	desc := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("edgehost_pool_"+name, help, append([]string{"pool", "scheme", "addr"}, extra...), nil)
	}
	return &poolCollector{
		pools:    pools,
		opened:   desc("connections_opened_total", "Origin connections opened."),
		reused:   desc("connections_reused_total", "Requests given a connection that had served an earlier request."),
		closed:   desc("connections_closed_total", "Origin connections closed, by reason.", "reason"),
		requests: desc("requests_total", "Requests sent through the pool."),
		retries:  desc("retries_total", "Request attempts beyond the first."),
		waits:    desc("waits_total", "Attempts that waited for a connection at max_connections."),
		inUse:    desc("connections_in_use", "Connections carrying a request now."),
		idle:     desc("connections_idle", "Open connections carrying no request."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.opened, c.reused, c.closed, c.requests, c.retries, c.waits, c.inUse, c.idle} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.pools.Pools() {
		l := []string{strconv.FormatUint(p.ID, 10), p.Settings.Scheme, p.Settings.Addr}
		s := p.Stats
		counter := func(d *prometheus.Desc, v uint64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append(append([]string(nil), l...), extra...)...)
		}
		counter(c.opened, s.Opened)
		counter(c.reused, s.Reused)
		counter(c.requests, s.Requests)
		counter(c.retries, s.Retries)
		counter(c.waits, s.Waits)
		for reason, v := range closedByReason(s.Closed) {
			counter(c.closed, v, reason)
		}
		ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(s.InUse), l...)
		ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.Idle), l...)
	}
}

// closedByReason names pool.ClosedStats' counters as the pool logs them.
func closedByReason(c pool.ClosedStats) map[string]uint64 {
	return map[string]uint64{
		"idle_timeout":        c.IdleTimeout,
		"origin_idle_timeout": c.OriginIdleTimeout,
		"max_use":             c.MaxUse,
		"lifetime":            c.Lifetime,
		"origin_close":        c.OriginClose,
		"error":               c.Error,
		"dont_pool":           c.DontPool,
		"shutdown":            c.Shutdown,
	}
}
