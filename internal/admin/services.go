package admin

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// services handles GET /v1/services: the platform services of the active
// version (hostcall.ServicesInfo: ACL names and entry counts, the
// geolocation sources and sizes, device detection entries, rate counters
// and penalty boxes with their entry counts, shielding sites). It gives
// names and sizes, never the data. 404 when no version is active.
func (a *Admin) services(c echo.Context) error {
	v := a.cfg.Server.Active()
	if v == nil || v.Env == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no version is active")
	}
	return c.JSON(http.StatusOK, v.Env.Services())
}
