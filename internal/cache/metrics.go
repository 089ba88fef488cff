package cache

import "github.com/prometheus/client_golang/prometheus"

// Collector returns a Prometheus collector of c's Stats, read at each
// scrape (register it beside the pool collector of internal/admin):
//
//	edgehost_cache_hits_total, edgehost_cache_stale_hits_total, edgehost_cache_stale_if_error_total, edgehost_cache_misses_total,
//	edgehost_cache_passes_total, edgehost_cache_collapsed_total, edgehost_cache_revalidations_total,
//	edgehost_cache_not_modified_total, edgehost_cache_stored_total, edgehost_cache_evictions_total,
//	edgehost_cache_purged_total                 counters, as Stats documents them
//	edgehost_cache_objects, edgehost_cache_bytes gauges: entries and their bytes now
//	edgehost_cache_max_bytes                     gauge: the bound on edgehost_cache_bytes
func (c *Cache) Collector() prometheus.Collector { return &collector{c: c} }

type collector struct{ c *Cache }

type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(Stats) float64
}

var metrics = func() []metric {
	counter := func(name, help string, v func(Stats) uint64) metric {
		return metric{prometheus.NewDesc("edgehost_cache_"+name, help, nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(v(s)) }}
	}
	gauge := func(name, help string, v func(Stats) float64) metric {
		return metric{prometheus.NewDesc("edgehost_cache_"+name, help, nil, nil), prometheus.GaugeValue, v}
	}
	return []metric{
		counter("hits_total", "Requests answered from a stored object.", func(s Stats) uint64 { return s.Hits }),
		counter("stale_hits_total", "Hits that served a stale object while it was refreshed.", func(s Stats) uint64 { return s.StaleHits }),
		counter("stale_if_error_total", "Hits that served a stale object because revalidating it failed.", func(s Stats) uint64 { return s.StaleIfError }),
		counter("misses_total", "Origin requests made for the cache.", func(s Stats) uint64 { return s.Misses }),
		counter("passes_total", "Requests sent to the origin past the cache.", func(s Stats) uint64 { return s.Passes }),
		counter("collapsed_total", "Requests that shared another request's origin request.", func(s Stats) uint64 { return s.Collapsed }),
		counter("revalidations_total", "Conditional origin requests.", func(s Stats) uint64 { return s.Revalidations }),
		counter("not_modified_total", "Revalidations answered 304.", func(s Stats) uint64 { return s.NotModified }),
		counter("stored_total", "Objects stored.", func(s Stats) uint64 { return s.Stored }),
		counter("evictions_total", "Objects evicted by the memory bound.", func(s Stats) uint64 { return s.Evictions }),
		counter("purged_total", "Objects removed or marked stale by purges.", func(s Stats) uint64 { return s.Purged }),
		gauge("objects", "Entries held now.", func(s Stats) float64 { return float64(s.Objects) }),
		gauge("bytes", "Bytes the entries held now weigh.", func(s Stats) float64 { return float64(s.Bytes) }),
		gauge("max_bytes", "The bound on edgehost_cache_bytes.", func(s Stats) float64 { return float64(s.MaxBytes) }),
	}
}()

func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range metrics {
		ch <- d.desc
	}
}

func (m *collector) Collect(ch chan<- prometheus.Metric) {
	s := m.c.Stats()
	for _, d := range metrics {
		ch <- prometheus.MustNewConstMetric(d.desc, d.kind, d.value(s))
	}
}
