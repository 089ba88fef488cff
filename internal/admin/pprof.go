package admin

import (
	"errors"
	"net/http"
	"net/http/pprof"

	"github.com/labstack/echo/v4"
)

// errPprofNoToken is New's refusal of Config.Pprof without a token.
var errPprofNoToken = errors.New("admin: profiling (--admin-pprof) needs an admin token: set " + TokenEnv + " (or --admin-token)")

// routePprof serves Go's runtime profiles (net/http/pprof) under
// /debug/pprof/ on the admin listener, every one behind the admin token
// (auth), GET and POST alike: a profile shows what the host runs, and
// /debug/pprof/profile and /trace keep the CPU busy for their seconds.
// go tool pprof cannot send the token itself, so fetch the profile first:
//
//	curl -H "Authorization: Bearer $EDGEHOST_ADMIN_TOKEN" -o cpu.pprof \
//	    'http://127.0.0.1:7677/debug/pprof/profile?seconds=10'
//	go tool pprof -top cpu.pprof
func (a *Admin) routePprof(e *echo.Echo) error {
	if a.cfg.Token == "" {
		return errPprofNoToken
	}
	wrap := func(h http.HandlerFunc) echo.HandlerFunc { return echo.WrapHandler(h) }
	for path, h := range map[string]http.HandlerFunc{
		"/debug/pprof/cmdline": pprof.Cmdline,
		"/debug/pprof/profile": pprof.Profile,
		"/debug/pprof/symbol":  pprof.Symbol,
		"/debug/pprof/trace":   pprof.Trace,
		// Index serves the list at /debug/pprof/ and every named
		// profile (heap, goroutine, allocs, block, mutex, ...) below it.
		"/debug/pprof/":  pprof.Index,
		"/debug/pprof/*": pprof.Index,
	} {
		e.GET(path, wrap(h), a.auth)
		e.POST(path, wrap(h), a.auth)
	}
	return nil
}
