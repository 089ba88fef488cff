package admin

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/fleet"
)

// The cache's admin calls (README.md, "Caching"), served when
// Config.Cache is set:
//
//	POST /v1/purge/{surrogate_key}   purge the objects carrying the key (?soft=true: mark them stale); {purged, soft}
//	POST /v1/purge                   purge every object; {purged}
//	GET  /v1/cache                   the cache's counters and size (CacheStats)
//
// In fleet mode the purges are also published to every other node
// (fleet.go); 503 when NATS is unreachable (purged on this node only).

// PurgeResult is the answer to the purge calls: the number of objects
// removed (or, soft, marked stale).
type PurgeResult struct {
	Purged int  `json:"purged"`
	Soft   bool `json:"soft,omitempty"`
}

// CacheStats is the answer to GET /v1/cache: cache.Stats in JSON.
type CacheStats struct {
	Hits          uint64 `json:"hits"`
	StaleHits     uint64 `json:"stale_hits"`
	StaleIfError  uint64 `json:"stale_if_error"`
	Misses        uint64 `json:"misses"`
	Passes        uint64 `json:"passes"`
	Collapsed     uint64 `json:"collapsed"`
	Revalidations uint64 `json:"revalidations"`
	NotModified   uint64 `json:"not_modified"`
	Stored        uint64 `json:"stored"`
	Evictions     uint64 `json:"evictions"`
	Purged        uint64 `json:"purged"`
	Objects       int    `json:"objects"`
	Bytes         uint64 `json:"bytes"`
	MaxBytes      uint64 `json:"max_bytes"`
}

// routeCache adds the cache's calls when there is a cache.
func (a *Admin) routeCache(e *echo.Echo) {
	c := a.cfg.Cache
	if c == nil {
		return
	}
	e.POST("/v1/purge/:key", func(ctx echo.Context) error {
		soft := false
		if s := ctx.QueryParam("soft"); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("soft=%q: want true or false", s))
			}
			soft = b
		}
		n := c.Purge("", ctx.Param("key"), soft)
		a.log.Info("purge", "surrogate_key", ctx.Param("key"), "soft", soft, "purged", n)
		if err := a.publishPurge(ctx.Request().Context(), fleet.Purge{SurrogateKey: ctx.Param("key"), Soft: soft}); err != nil {
			return err
		}
		return ctx.JSON(http.StatusOK, PurgeResult{Purged: n, Soft: soft})
	}, a.auth)
	e.POST("/v1/purge", func(ctx echo.Context) error {
		n := c.PurgeAll("")
		a.log.Info("purge all", "purged", n)
		if err := a.publishPurge(ctx.Request().Context(), fleet.Purge{All: true}); err != nil {
			return err
		}
		return ctx.JSON(http.StatusOK, PurgeResult{Purged: n})
	}, a.auth)
	e.GET("/v1/cache", func(ctx echo.Context) error {
		s := c.Stats()
		return ctx.JSON(http.StatusOK, CacheStats{Hits: s.Hits, StaleHits: s.StaleHits, StaleIfError: s.StaleIfError, Misses: s.Misses, Passes: s.Passes,
			Collapsed: s.Collapsed, Revalidations: s.Revalidations, NotModified: s.NotModified, Stored: s.Stored,
			Evictions: s.Evictions, Purged: s.Purged, Objects: s.Objects, Bytes: s.Bytes, MaxBytes: s.MaxBytes})
	})
}

// RegisterCache adds the cache's metrics (cache.Cache.Collector,
// edgehost_cache_*) to m.
func (m *Metrics) RegisterCache(c *cache.Cache) { m.reg.MustRegister(c.Collector()) }
