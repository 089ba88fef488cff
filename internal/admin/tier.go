package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/server"
)

// RegisterTier adds the active version's tiers (README.md, "Tiered
// compilation") to the metrics, read from active (server.Server.Active)
// at each scrape:
//
//	edgehost_active_version_tier{tier}      1 for the tier new sandboxes start on ("interpreter" or "optimized"), 0 for the other
//	edgehost_active_version_compiling       1 while the optimized compile runs in the background
//
// Neither is reported while no version is active.
func (m *Metrics) RegisterTier(active func() *server.Version) {
	m.reg.MustRegister(&tierCollector{
		active:    active,
		tier:      prometheus.NewDesc("edgehost_active_version_tier", "The tier new sandboxes of the active version start on (1) and the other (0).", []string{"tier"}, nil),
		compiling: prometheus.NewDesc("edgehost_active_version_compiling", "1 while the active version's optimized code compiles in the background.", nil, nil),
	})
}

type tierCollector struct {
	active          func() *server.Version
	tier, compiling *prometheus.Desc
}

func (c *tierCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tier
	ch <- c.compiling
}

func (c *tierCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.active()
	if v == nil {
		return
	}
	st := v.Tier()
	for _, t := range []string{engine.TierInterpreter, engine.TierOptimized} {
		on := 0.0
		if st.Tier == t {
			on = 1
		}
		ch <- prometheus.MustNewConstMetric(c.tier, prometheus.GaugeValue, on, t)
	}
	compiling := 0.0
	if st.Compiling {
		compiling = 1
	}
	ch <- prometheus.MustNewConstMetric(c.compiling, prometheus.GaugeValue, compiling)
}
