package admin

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/kvstore"
)

// KVStoreList is the answer of GET /v1/kv: every KV store of the host's
// database with its live keys and bytes.
type KVStoreList struct {
	Stores []kvstore.StoreInfo `json:"stores"`
}

// KVKeyPage is the answer of GET /v1/kv/{store}/keys, shaped as Fastly's
// KV API answers a key listing: the keys, and the cursor of the next page
// ("" on the last).
type KVKeyPage struct {
	Data []string `json:"data"`
	Meta struct {
		Limit      int    `json:"limit"`
		Prefix     string `json:"prefix,omitempty"`
		NextCursor string `json:"next_cursor,omitempty"`
	} `json:"meta"`
}

// SecretStoreList is the answer of GET /v1/secret-stores: the active
// version's secret stores with their secrets' names and counts, never a
// value.
type SecretStoreList struct {
	Stores []hostcall.SecretStoreInfo `json:"stores"`
}

// routeKV adds the KV and secret store calls (README.md, "KV stores"):
//
//	GET    /v1/kv                          stores: names, keys, bytes
//	GET    /v1/kv/{store}/keys             ?prefix=&cursor=&limit= (at most 1000)
//	GET    /v1/kv/{store}/keys/{key}       the value; headers Generation, Metadata, Expires
//	PUT    /v1/kv/{store}/keys/{key}       body = value; ?mode=overwrite|add|append|prepend,
//	                                       ?time_to_live_sec=N; headers Metadata, If-Generation-Match
//	DELETE /v1/kv/{store}/keys/{key}
//	GET    /v1/secret-stores               names and counts only
//
// PUT and DELETE need the token. Errors: 404 for an unknown store or key,
// 412 for a failed precondition, 413 over the value or metadata limits,
// 400 for a bad key or cursor, 503 without a KV database.
func (a *Admin) routeKV(e *echo.Echo) {
	e.GET("/v1/kv", a.kvStores)
	e.GET("/v1/kv/:store/keys", a.kvKeys)
	e.GET("/v1/kv/:store/keys/:key", a.kvGet)
	e.PUT("/v1/kv/:store/keys/:key", a.kvPut, a.auth)
	e.DELETE("/v1/kv/:store/keys/:key", a.kvDelete, a.auth)
	e.GET("/v1/secret-stores", a.secretStores)
}

func (a *Admin) kvDB() (kvstore.Backend, error) {
	if a.cfg.KV == nil {
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "this host keeps no KV database")
	}
	return a.cfg.KV, nil
}

// kvHTTPError maps a kvstore error onto the answer.
func kvHTTPError(err error) error {
	switch {
	case errors.Is(err, kvstore.ErrNoStore), errors.Is(err, kvstore.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, err.Error())
	case errors.Is(err, kvstore.ErrPreconditionFailed):
		return echo.NewHTTPError(http.StatusPreconditionFailed, err.Error())
	case errors.Is(err, kvstore.ErrBadKey), errors.Is(err, kvstore.ErrBadCursor):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	case errors.Is(err, kvstore.ErrTooLarge):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, err.Error())
	}
	return err
}

// key returns the unescaped :key parameter (echo leaves it escaped).
func kvKeyParam(c echo.Context) (string, error) {
	k, err := url.PathUnescape(c.Param("key"))
	if err != nil {
		return "", echo.NewHTTPError(http.StatusBadRequest, "bad key escape")
	}
	return k, nil
}

func (a *Admin) kvStores(c echo.Context) error {
	db, err := a.kvDB()
	if err != nil {
		return err
	}
	infos, err := db.Stores()
	if err != nil {
		return err
	}
	if infos == nil {
		infos = []kvstore.StoreInfo{}
	}
	return c.JSON(http.StatusOK, KVStoreList{Stores: infos})
}

func (a *Admin) kvKeys(c echo.Context) error {
	db, err := a.kvDB()
	if err != nil {
		return err
	}
	limit := 0
	if s := c.QueryParam("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > kvstore.MaxListLimit {
			return echo.NewHTTPError(http.StatusBadRequest, "limit: want 1 to 1000")
		}
	}
	p, err := db.List(c.Param("store"), c.QueryParam("prefix"), c.QueryParam("cursor"), limit)
	if err != nil {
		return kvHTTPError(err)
	}
	var out KVKeyPage
	out.Data, out.Meta.Limit, out.Meta.Prefix, out.Meta.NextCursor = p.Keys, p.Limit, c.QueryParam("prefix"), p.NextCursor
	return c.JSON(http.StatusOK, out)
}

func (a *Admin) kvGet(c echo.Context) error {
	db, err := a.kvDB()
	if err != nil {
		return err
	}
	key, err := kvKeyParam(c)
	if err != nil {
		return err
	}
	e, err := db.Lookup(c.Param("store"), key)
	if err != nil {
		return kvHTTPError(err)
	}
	h := c.Response().Header()
	h.Set("Generation", strconv.FormatUint(e.Generation, 10))
	if len(e.Metadata) > 0 {
		h.Set("Metadata", string(e.Metadata))
	}
	if !e.Expires.IsZero() {
		h.Set("Expires", e.Expires.UTC().Format(http.TimeFormat))
	}
	return c.Blob(http.StatusOK, "application/octet-stream", e.Value)
}

func (a *Admin) kvPut(c echo.Context) error {
	db, err := a.kvDB()
	if err != nil {
		return err
	}
	key, err := kvKeyParam(c)
	if err != nil {
		return err
	}
	var opts kvstore.InsertOptions
	switch c.QueryParam("mode") {
	case "", "overwrite":
	case "add":
		opts.Mode = kvstore.Add
	case "append":
		opts.Mode = kvstore.Append
	case "prepend":
		opts.Mode = kvstore.Prepend
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "mode: want overwrite, add, append or prepend")
	}
	if s := c.QueryParam("time_to_live_sec"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "time_to_live_sec: want seconds")
		}
		opts.TTL = time.Duration(n) * time.Second
	}
	if m := c.Request().Header.Get("Metadata"); m != "" {
		opts.Metadata = []byte(m)
	}
	if g := c.Request().Header.Get("If-Generation-Match"); g != "" {
		n, err := strconv.ParseUint(g, 10, 64)
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "If-Generation-Match: want a generation number")
		}
		opts.IfGeneration = &n
	}
	value, err := io.ReadAll(io.LimitReader(c.Request().Body, kvstore.MaxValueLen+1))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "reading the value: "+err.Error())
	}
	gen, err := db.Insert(c.Param("store"), key, value, opts)
	if err != nil {
		return kvHTTPError(err)
	}
	c.Response().Header().Set("Generation", strconv.FormatUint(gen, 10))
	return c.JSON(http.StatusOK, map[string]any{"store": c.Param("store"), "key": key, "generation": gen})
}

func (a *Admin) kvDelete(c echo.Context) error {
	db, err := a.kvDB()
	if err != nil {
		return err
	}
	key, err := kvKeyParam(c)
	if err != nil {
		return err
	}
	if err := db.Delete(c.Param("store"), key); err != nil {
		return kvHTTPError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *Admin) secretStores(c echo.Context) error {
	out := SecretStoreList{Stores: []hostcall.SecretStoreInfo{}}
	if v := a.cfg.Server.Active(); v != nil {
		out.Stores = v.Env.SecretStoreInfo()
	}
	return c.JSON(http.StatusOK, out)
}
