package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

//go:embed status.html
var statusHTML string

// statusTemplate renders the status page; its "live" template is the
// part the page's script fetches again (GET /?part=live) to update itself.
var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"bytes": func(n int64) string {
		switch {
		case n >= 10<<20:
			return strconv.FormatInt(n>>20, 10) + " MiB"
		case n >= 10<<10:
			return strconv.FormatInt(n>>10, 10) + " KiB"
		}
		return strconv.FormatInt(n, 10) + " B"
	},
	"rate": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
}).Parse(statusHTML))

// statusData is what the status page shows.
type statusData struct {
	Now       time.Time
	Engine    string
	NeedToken bool
	Message   string // after an activation from the page
	Error     string

	Active       VersionInfo   // Number 0: nothing stored is active
	RollBack     int           // the version the roll-back button activates, 0 for none
	RollBackKept bool          // that version's module is kept: activating it compiles nothing
	Versions     []VersionInfo // Kept set as in GET /v1/modules (kept.go)

	Running, Parked, Limit int

	Window    int     // seconds the rate is over
	PerSecond float64 // requests per second over Window
	Total     uint64  // requests since the start
	Mix       []StatusCount

	Pools  []poolRow
	Errors []GuestError
}

// poolRow is a pool with its closed counters that are not zero, by reason.
type poolRow struct {
	PoolInfo
	Closed []StatusReason
}

// StatusReason is one reason connections closed and how many did.
type StatusReason struct {
	Reason string
	Count  uint64
}

func (a *Admin) statusData(r *http.Request) (statusData, error) {
	d := statusData{Now: time.Now(), Engine: a.cfg.Engine, NeedToken: a.cfg.Token != "", Window: trafficWindow}
	d.Message, d.Error = r.URL.Query().Get("msg"), r.URL.Query().Get("err")
	versions, err := a.cfg.Store.List()
	if err != nil {
		return d, err
	}
	a.mu.Lock()
	active, previous := a.active, a.previous
	a.mu.Unlock()
	kept := a.keptNumbers()
	stored := map[int]bool{}
	for _, v := range versions {
		info := VersionInfo{Version: v, Active: v.Number == active}
		info.Kept = !info.Active && kept[v.Number]
		d.Versions = append(d.Versions, info)
		stored[v.Number] = true
		if info.Active {
			d.Active = info
		}
		// Without a known previous one, roll back to the newest older one.
		if previous == 0 && v.Number < active && d.RollBack == 0 {
			d.RollBack = v.Number
		}
	}
	if previous != 0 && previous != active && stored[previous] {
		d.RollBack = previous
	}
	d.RollBackKept = kept[d.RollBack]
	d.Running, d.Parked, d.Limit = a.cfg.Server.Sandboxes()
	if a.cfg.Metrics != nil {
		d.PerSecond, d.Mix, d.Total = a.cfg.Metrics.traffic.snapshot(d.Now)
	}
	if a.cfg.Loader.Pools != nil {
		for _, p := range a.cfg.Loader.Pools.Pools() {
			row := poolRow{PoolInfo: poolView(p)}
			for reason, n := range row.Stats.Closed {
				if n > 0 {
					row.Closed = append(row.Closed, StatusReason{reason, n})
				}
			}
			sort.Slice(row.Closed, func(i, j int) bool { return row.Closed[i].Reason < row.Closed[j].Reason })
			d.Pools = append(d.Pools, row)
		}
	}
	if a.cfg.GuestErrors != nil {
		d.Errors = a.cfg.GuestErrors.Recent()
	}
	return d, nil
}

// statusPage handles GET /: the status page (README.md, "Status page"),
// or with ?part=live only the part that changes, for the page's script.
func (a *Admin) statusPage(c echo.Context) error {
	d, err := a.statusData(c.Request())
	if err != nil {
		return echo.NewHTTPError(http.StatusInternalServerError, err.Error())
	}
	name := "status"
	if c.QueryParam("part") == "live" {
		name = "live"
	}
	var b bytes.Buffer
	if err := statusTemplate.ExecuteTemplate(&b, name, d); err != nil {
		return echo.NewHTTPError(http.StatusInternalServerError, err.Error())
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.HTMLBlob(http.StatusOK, b.Bytes())
}

// uiActivate handles POST /ui/activate, the status page's activate and
// roll-back buttons: a form with version and token (the admin token, when
// the host has one). It answers 303 to the page with the outcome.
// Requests from another site's page (an Origin header naming another
// host) are refused with 403.
func (a *Admin) uiActivate(c echo.Context) error {
	r := c.Request()
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			return echo.NewHTTPError(http.StatusForbidden, "the status page's forms are accepted only from the status page")
		}
	}
	back := func(key, msg string) error {
		return c.Redirect(http.StatusSeeOther, "/?"+url.Values{key: {msg}}.Encode())
	}
	if a.cfg.Token != "" {
		got := sha256.Sum256([]byte(c.FormValue("token")))
		want := sha256.Sum256([]byte(a.cfg.Token))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return back("err", "wrong or missing admin token: nothing changed")
		}
	}
	info, err := a.activateParam(r.Context(), c.FormValue("version"))
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return back("err", "not activated: "+he.Message.(string))
		}
		return back("err", "not activated: "+err.Error())
	}
	if info.Previous == info.Number {
		return back("msg", "version "+strconv.Itoa(info.Number)+" was already active")
	}
	return back("msg", "activated version "+strconv.Itoa(info.Number))
}
