package server_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/guesttest/dnstest"
	"github.com/edgehost/edgehost/internal/guesttest/testhost"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
	"github.com/edgehost/edgehost/internal/store"
)

// localDev is the dynamic backend policy of local development (the tests'
// origins are on loopback): loopback and private ranges open.
func localDev(t testing.TB) *hostcall.Policy {
	t.Helper()
	g, err := pool.NewGuard(pool.GuardConfig{AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	return &hostcall.Policy{Guard: g}
}

// ownHost is a whole host as edgehost serve assembles it, with its
// listeners known to the dynamic backend policy: the admin API on every
// interface ([::]:0, else 0.0.0.0:0), so that each address form of this
// machine would reach it, and the downstream server on 127.0.0.1. The
// admin handler counts the requests that reach it.
type ownHost struct {
	url       string // downstream
	adminPort string
	dsPort    string
	adminHits atomic.Int64
	logs      *guesttest.LogBuffer
}

func startOwnHost(t *testing.T, cfg pool.GuardConfig, wasm []byte, manifest string) *ownHost {
	t.Helper()
	h := &ownHost{}
	adminLn, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		if adminLn, err = net.Listen("tcp", "0.0.0.0:0"); err != nil {
			t.Fatal(err)
		}
	}
	dsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, h.adminPort, _ = net.SplitHostPort(adminLn.Addr().String())
	_, h.dsPort, _ = net.SplitHostPort(dsLn.Addr().String())
	cfg.Listeners = []string{adminLn.Addr().String(), dsLn.Addr().String()}
	guard, err := pool.NewGuard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	th := testhost.New(t, wasm, testhost.Config{
		EngineConfig: engine.Config{CacheDir: compileCache},
		Manifest:     manifest,
		Env:          server.GuestEnv("test"),
		Policy:       &hostcall.Policy{Guard: guard},
	})
	h.logs = th.Logs
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	adm, err := admin.New(admin.Config{Store: st, Server: th.Server, Loader: th.Loader, Token: "secret", Logger: th.Log})
	if err != nil {
		t.Fatal(err)
	}
	as := &httptest.Server{Listener: adminLn, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.adminHits.Add(1)
		adm.Handler().ServeHTTP(w, r)
	})}}
	as.Start()
	t.Cleanup(as.Close)
	h.url = th.Serve(t, dsLn)
	return h
}

// through asks the dynbackend guest to proxy GET path to target.
func (h *ownHost) through(t *testing.T, target, path string) (int, string) {
	t.Helper()
	resp, body := get(t, h.url+path, "X-Target", target)
	return resp.StatusCode, body
}

// nonLoopbackAddr returns an address of this machine's interfaces that is
// neither loopback nor link-local, or "".
func nonLoopbackAddr(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ip, _ := netip.AddrFromSlice(n.IP)
			if ip = ip.Unmap(); ip.IsValid() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				return ip.String()
			}
		}
	}
	return ""
}

// TestGuestCannotReachOwnHost: a guest's dynamic backends reach none of
// its host's listeners (the admin API, the downstream server) by any
// address or name that leads there: unspecified, loopback, 127.1, IPv4-
// mapped, an interface address, localhost, a name that rebinds from
// 127.0.0.2 to 127.0.0.1 between lookups. A legitimate origin on another
// loopback port keeps working, under local development's policy and
// under an allowlist that lists everything. Names resolve through a test
// DNS server on loopback only.
func TestGuestCannotReachOwnHost(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	_, originPort, _ := net.SplitHostPort(origin.Listener.Addr().String())
	dns := dnstest.Start(t, map[string][]string{
		"rebind.test": {"127.0.0.2", "127.0.0.1"},
		"mapped.test": {"::ffff:127.0.0.1"},
		"origin.test": {"127.0.0.1"},
	})
	manifest := dynManifest(map[string]string{"name": "b", "target_header": "X-Target"})
	iface := nonLoopbackAddr(t)
	if iface == "" {
		t.Log("this machine has no non-loopback interface address: the interface case is skipped")
	}
	policies := map[string]pool.GuardConfig{
		"local development": {AllowPrivate: true, Resolver: dns.Resolver()},
		"everything listed": {Allowed: []string{"0.0.0.0/0", "::/0", "rebind.test", "mapped.test", "origin.test", "localhost"},
			Resolver: dns.Resolver()},
	}
	for name, cfg := range policies {
		t.Run(name, func(t *testing.T) {
			h := startOwnHost(t, cfg, guests["dynbackend"], manifest)

			// The legitimate origin, by address and by name.
			for _, target := range []string{"127.0.0.1:" + originPort, "origin.test.:" + originPort} {
				if status, body := h.through(t, target, "/"); status != 200 || body != "ok" {
					t.Fatalf("legitimate origin %s: %d %q", target, status, body)
				}
			}

			type attack struct {
				target string
				probe  string // a host the test itself dials to show the form reaches the listener; "" for none
			}
			ap, dp := h.adminPort, h.dsPort
			attacks := []attack{
				{"0.0.0.0:" + ap, "0.0.0.0"},
				{"[::]:" + ap, "::"},
				{"127.0.0.1:" + ap, "127.0.0.1"},
				{"127.0.0.2:" + ap, "127.0.0.2"},
				{"[::1]:" + ap, "::1"},
				{"127.1:" + ap, ""},
				{"2130706433:" + ap, ""},
				{"[::ffff:127.0.0.1]:" + ap, "::ffff:127.0.0.1"},
				{"[::ffff:7f00:1]:" + ap, "::ffff:7f00:1"},
				{"[::ffff:0.0.0.0]:" + ap, "::ffff:0.0.0.0"},
				{"localhost:" + ap, "localhost"},
				{"rebind.test.:" + ap, ""},
				{"mapped.test.:" + ap, ""},
				{"127.0.0.1:" + dp, "127.0.0.1"},
				{"0.0.0.0:" + dp, "0.0.0.0"},
			}
			if iface != "" {
				attacks = append(attacks, attack{net.JoinHostPort(iface, ap), iface})
			}
			for _, a := range attacks {
				t.Run(a.target, func(t *testing.T) {
					if a.probe != "" {
						port := ap
						if strings.HasSuffix(a.target, ":"+dp) {
							port = dp
						}
						c, err := net.Dial("tcp", net.JoinHostPort(a.probe, port))
						if err != nil {
							t.Skipf("%s does not reach the listener on this machine: %v", a.probe, err)
						}
						c.Close()
					}
					before, logsBefore := h.adminHits.Load(), len(h.logs.String())
					status, body := h.through(t, a.target, "/v1/modules")
					logs := h.logs.String()[logsBefore:]
					if h.adminHits.Load() != before {
						t.Fatalf("the guest reached the admin API through %s: %d %q", a.target, status, body)
					}
					// 500: registration refused (unsupported); 503: the
					// send failed, its dial refused.
					if (status != 500 && status != 503) || !strings.HasPrefix(body, "dynbackend: ") {
						t.Fatalf("through %s: %d %q, want the guest's 500 or 503", a.target, status, body)
					}
					switch {
					case status == 500 && !strings.Contains(body, "unsupported"):
						t.Fatalf("refused registration answered %q, want unsupported", body)
					case status == 500 && strings.Count(logs, "dynamic backend refused by policy") != 1:
						t.Fatalf("refused registration: want one log line, got:\n%s", logs)
					case status == 503 && (strings.Count(logs, "backend request failed") != 1 || !strings.Contains(logs, "address refused by the backend policy")):
						t.Fatalf("refused dial: want one log line naming the policy, got:\n%s", logs)
					}
				})
			}
			if dns.QueriesA("rebind.test") < 1 {
				t.Fatal("the rebinding name was never resolved: the dial did not use the test resolver")
			}
		})
	}
}

// TestGuestDNSRebinding is the rebinding attack itself: the allowlist
// names addresses, so registering a name resolves it, and the first
// answer (198.51.100.7, listed) passes; the pool's dial resolves it again
// and gets 127.0.0.1, which the dial-time check refuses. Nothing is ever
// dialled at 198.51.100.7: the test DNS server gives that answer once.
func TestGuestDNSRebinding(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	_, originPort, _ := net.SplitHostPort(origin.Listener.Addr().String())
	dns := dnstest.Start(t, map[string][]string{
		"rebind.test": {"198.51.100.7", "127.0.0.1"},
		"origin.test": {"127.0.0.1"},
	})
	h := startOwnHost(t, pool.GuardConfig{Allowed: []string{"198.51.100.7", "127.0.0.1:" + originPort}, Resolver: dns.Resolver()},
		guests["dynbackend"], dynManifest(map[string]string{"name": "b", "target_header": "X-Target"}))
	if status, body := h.through(t, "origin.test.:"+originPort, "/"); status != 200 || body != "ok" {
		t.Fatalf("legitimate origin by name: %d %q", status, body)
	}
	logsBefore := len(h.logs.String())
	status, body := h.through(t, "rebind.test.:"+h.adminPort, "/v1/modules")
	if h.adminHits.Load() != 0 {
		t.Fatalf("the guest reached the admin API: %d %q", status, body)
	}
	if n := dns.QueriesA("rebind.test"); n != 2 {
		t.Fatalf("rebind.test resolved %d times (A), want 2: at registration, then at the dial", n)
	}
	if status != 503 || !strings.Contains(body, "dynbackend: ") {
		t.Fatalf("rebinding name: %d %q, want the guest's 503 (send failed)", status, body)
	}
	if logs := h.logs.String()[logsBefore:]; !strings.Contains(logs, "address refused by the backend policy: 127.0.0.1:"+h.adminPort) {
		t.Fatalf("the refused dial is not logged with the address dialled:\n%s", logs)
	}
	// Registering it again resolves it again: now 127.0.0.1, refused at
	// registration.
	if status, body := h.through(t, "rebind.test.:"+h.adminPort, "/v1/modules"); status != 500 || !strings.Contains(body, "unsupported") {
		t.Fatalf("second registration: %d %q, want 500 unsupported", status, body)
	}
	if h.adminHits.Load() != 0 {
		t.Fatal("the guest reached the admin API")
	}
}

// TestSharedHostDefaultPolicy: with the default policy (a shared host) a
// guest cannot reach a loopback origin at all; the registration is
// refused with unsupported and one log line naming the rule.
func TestSharedHostDefaultPolicy(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	h := startOwnHost(t, pool.GuardConfig{}, guests["dynbackend"], dynManifest(map[string]string{"name": "b", "target_header": "X-Target"}))
	status, body := h.through(t, origin.Listener.Addr().String(), "/")
	if status != 500 || !strings.Contains(body, "unsupported") {
		t.Fatalf("loopback origin under the default policy: %d %q, want 500 unsupported", status, body)
	}
	if origin.Conns() != 0 {
		t.Fatalf("the origin accepted %d connections", origin.Conns())
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "dynamic backend refused by policy"); n != 1 {
		t.Fatalf("%d refusal log lines, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, "loopback address") {
		t.Fatalf("the refusal does not name the rule:\n%s", logs)
	}
}
