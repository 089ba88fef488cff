package admin_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/server"
	"github.com/edgehost/edgehost/internal/store"
)

// pprofAdmin serves an admin API with Pprof set as given, on loopback.
func pprofAdmin(t *testing.T, token string, on bool) (string, error) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	adm, err := admin.New(admin.Config{Store: st, Server: server.New(server.Config{Logger: log}),
		Loader: &server.Loader{Logger: log}, Token: token, Pprof: on, Logger: log})
	if err != nil {
		return "", err
	}
	hs := httptest.NewServer(adm.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, nil
}

func getWith(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPprof: the runtime profiles are served only when asked for, and
// then only with the admin token.
func TestPprof(t *testing.T) {
	if _, err := pprofAdmin(t, "", true); err == nil || !strings.Contains(err.Error(), admin.TokenEnv) {
		t.Fatalf("Pprof without a token: err %v, want a refusal naming %s", err, admin.TokenEnv)
	}

	off, err := pprofAdmin(t, "s3cret", false)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := getWith(t, off+"/debug/pprof/cmdline", "s3cret"); code != http.StatusNotFound {
		t.Errorf("pprof off: status %d, want 404", code)
	}

	on, err := pprofAdmin(t, "s3cret", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, token string
		code        int
		body        string
	}{
		{"/debug/pprof/", "", http.StatusUnauthorized, ""},
		{"/debug/pprof/heap?debug=1", "wrong", http.StatusForbidden, ""},
		{"/debug/pprof/goroutine?debug=1", "", http.StatusUnauthorized, ""},
		{"/debug/pprof/", "s3cret", http.StatusOK, "goroutine"},
		{"/debug/pprof/heap?debug=1", "s3cret", http.StatusOK, "heap profile"},
		{"/debug/pprof/goroutine?debug=1", "s3cret", http.StatusOK, "goroutine profile"},
		{"/debug/pprof/cmdline", "s3cret", http.StatusOK, ""},
	} {
		code, body := getWith(t, on+tc.path, tc.token)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s with token %q: %d %.80q, want %d containing %q", tc.path, tc.token, code, body, tc.code, tc.body)
		}
	}
}
