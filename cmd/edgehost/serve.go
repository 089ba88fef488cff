package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/fleet"
	"github.com/edgehost/edgehost/internal/gcfloor"
	"github.com/edgehost/edgehost/internal/server"
	"github.com/edgehost/edgehost/internal/store"
)

// serveFlags are serve's own flags.
type serveFlags struct {
	addr, adminAddr, dataDir, adminToken string
	allowPrivateBackends                 bool
	adminPprof                           bool
	keptVersions                         int
	tls                                  tlsFlags
	cluster                              clusterFlags
	watch                                string
	verbose                              int
}

// gcFloor is the smallest heap goal serve keeps for Go's collector, bytes,
// unless GOGC is set (README.md, Limits, "Go's collector").
const gcFloor = 32 << 20

func newServeCmd() *cobra.Command {
	var c common
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [MODULE]",
		Short: "Serve downstream HTTP with a guest, and deployments through the admin API",
		Long: "Serve downstream HTTP with a guest. MODULE is a .wasm file, a package .tar.gz (fastly.toml and\n" +
			"bin/main.wasm) or a folder with a Go main package. Without MODULE, serve the active version\n" +
			"deployed to --data-dir, or a welcome page saying how to deploy.\n\n" +
			"The admin API (--admin-addr, default " + config.DefaultAdminAddr + "; \"\" turns it off) takes\n" +
			"deployments: edgehost deploy, versions, activate, pools. Its POST calls need the token in\n" +
			admin.TokenEnv + " (or --admin-token) when one is set; a non-loopback admin address needs one.\n\n" +
			"--data-dir (default $XDG_DATA_HOME/edgehost, else ~/.local/share/edgehost) keeps the deployed\n" +
			"versions, the active pointer and compiled code, so a restart serves the last active version\n" +
			"without recompiling.\n\n" +
			"Dynamic backends reach public addresses only (or allowed_backend_targets); for local\n" +
			"development --allow-private-backends opens loopback and private ranges. This host's own\n" +
			"ports (--addr, --admin-addr) are refused to guests on every address of the host.\n\n" +
			"--cluster nats://host:4222[,...] (or \"embedded\") joins a fleet on NATS JetStream: a deploy to\n" +
			"any node reaches every node, KV stores and purges are shared (README.md, \"Fleet\").",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd, &c, &f, args)
		},
	}
	c.register(cmd)
	f.tls.register(cmd)
	f.cluster.register(cmd)
	cmd.Flags().StringVar(&f.addr, "addr", config.DefaultAddr, "downstream listen address")
	cmd.Flags().StringVar(&f.adminAddr, "admin-addr", config.DefaultAdminAddr, `admin API listen address; "" turns it off`)
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "where deployed versions and compiled code are kept (default $XDG_DATA_HOME/edgehost or ~/.local/share/edgehost)")
	cmd.Flags().StringVar(&f.adminToken, "admin-token", "", "admin API token (default $"+admin.TokenEnv+"; prefer the variable, flags show in ps)")
	cmd.Flags().BoolVar(&f.allowPrivateBackends, "allow-private-backends", false, "local development: let dynamic backends reach loopback and private addresses (allow_private_backends); this host's own ports stay refused")
	cmd.Flags().StringVar(&f.watch, "watch", "", "rebuild and swap in the guest when a file under DIR changes (MODULE defaults to DIR); a failed build is printed and the previous one keeps serving")
	cmd.Flags().CountVarP(&f.verbose, "verbose", "v", "Viceroy's verbosity flag, which Fastly's CLI passes: -v is the default info log, -vv debug (unless --log-level is given)")
	cmd.Flags().IntVar(&f.keptVersions, "kept-versions", config.DefaultKeptVersions, "how many replaced versions keep their compiled code loaded for an instant re-activation (kept_versions; 0 turns it off)")
	cmd.Flags().BoolVar(&f.adminPprof, "admin-pprof", false, "serve Go's runtime profiles (net/http/pprof) at /debug/pprof/ on the admin API, behind the admin token (needs one)")
	return cmd
}

func serve(cmd *cobra.Command, c *common, f *serveFlags, args []string) error {
	flushStderr := func() {}
	if !isTerminal(cmd.ErrOrStderr()) {
		// Request log lines leave in batches; everything serve writes to
		// stderr goes through the one writer, so lines keep their order.
		bw := newBatchWriter(cmd.ErrOrStderr())
		defer bw.Close()
		cmd.SetErr(bw)
		flushStderr = bw.flush
	}
	if f.verbose >= 2 && !cmd.Flags().Changed("log-level") {
		c.logLevel = "debug"
	}
	log, err := c.logger(cmd)
	if err != nil {
		return err
	}
	guestErrors := admin.NewGuestErrors(0) // the status page's recent guest errors
	log = slog.New(guestErrors.Handler(log.Handler()))
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("GOGC") == "" {
		// A heap goal of at least gcFloor: far fewer collections for a
		// host whose live heap is a few MiB (README.md, Limits).
		gcfloor.Keep(ctx, gcFloor, 100)
	}
	if f.watch != "" && len(args) == 0 {
		args = []string{f.watch}
	}
	if f.watch != "" && isPackage(args[0]) {
		return fmt.Errorf("--watch needs MODULE to be a folder or a .wasm file, not a package")
	}

	// The host manifest: -C, the module folder's, ./fastly.toml, defaults.
	var wasm []byte
	var moduleManifest *config.Manifest
	dir := ""
	if len(args) == 1 && !isPackage(args[0]) {
		if wasm, dir, err = loadModule(ctx, args[0], c.toolchain, log); err != nil {
			return err
		}
	}
	m, err := c.manifest(dir)
	if err != nil {
		return err
	}
	flags := cmd.Flags()
	if !flags.Changed("addr") {
		f.addr = m.Host.Addr
	}
	adminExplicit := flags.Changed("admin-addr") || m.Host.IsSet("admin_addr")
	if !flags.Changed("admin-addr") {
		f.adminAddr = m.Host.AdminAddr
	}
	if !flags.Changed("data-dir") {
		f.dataDir = m.Host.DataDir
	}
	if !flags.Changed("allow-private-backends") {
		f.allowPrivateBackends = m.Host.AllowPrivateBackends
	}
	if !flags.Changed("kept-versions") {
		f.keptVersions = m.Host.KeptVersions
	}
	if f.keptVersions < 0 || f.keptVersions > 64 {
		return fmt.Errorf("--kept-versions %d: want 0 to 64", f.keptVersions)
	}
	if f.adminToken == "" {
		f.adminToken = os.Getenv(admin.TokenEnv)
	}
	if f.adminAddr != "" {
		if err := admin.CheckAddr(f.adminAddr, f.adminToken); err != nil {
			return err
		}
	}
	cluster := f.cluster.settings(flags, m.Host.Cluster)
	if len(cluster.URLs) > 0 && len(args) > 0 {
		return fmt.Errorf("--cluster serves the fleet's deployed versions: deploy MODULE with edgehost deploy instead of naming it")
	}

	// The admin listener first: when its default address is taken (say,
	// by another edgehost serve), go on without it rather than fail.
	var adminLn net.Listener
	if f.adminAddr != "" {
		adminLn, err = net.Listen("tcp", f.adminAddr)
		if err != nil {
			if adminExplicit {
				return fmt.Errorf("admin API: %w", err)
			}
			log.Warn("admin API off: its default address is not free; set --admin-addr", "addr", f.adminAddr, "err", err)
			adminLn = nil
		} else {
			defer adminLn.Close()
		}
	}

	// The data dir: needed to deploy (admin on), to serve the active
	// version (no MODULE), and to unpack a package.
	var st *store.Store
	if adminLn != nil || len(args) == 0 || isPackage(args[0]) || len(cluster.URLs) > 0 {
		if f.dataDir == "" {
			if f.dataDir, err = store.DefaultDir(); err != nil {
				return err
			}
		}
		st, err = store.Open(f.dataDir)
		if errors.Is(err, store.ErrLocked) && adminLn != nil && !adminExplicit && len(args) == 1 && !isPackage(args[0]) {
			log.Warn("admin API off: the data dir is in use by another edgehost; set --data-dir", "data_dir", f.dataDir)
			adminLn.Close()
			adminLn, st, err = nil, nil, nil
		}
		if err != nil {
			return err
		}
		if st != nil {
			defer st.Close()
		}
	}
	cacheDir := ""
	if st != nil {
		cacheDir = st.CacheDir()
	}
	var fl *fleet.Fleet
	if len(cluster.URLs) > 0 {
		var leave func()
		if fl, leave, err = joinFleet(cluster, st.Dir(), log); err != nil {
			return err
		}
		defer leave()
	}
	eng, err := c.engine(m, cacheDir)
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	// The downstream listener before the loader: dynamic backends must
	// not reach either of this host's listeners, so the policy needs
	// their ports.
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	adminURL := ""
	listeners := []string{ln.Addr().String()}
	if adminLn != nil {
		adminURL = "http://" + adminLn.Addr().String()
		listeners = append(listeners, adminLn.Addr().String())
	}
	loader, err := newLoader(eng, m, log, listeners, f.allowPrivateBackends)
	if err != nil {
		return err
	}
	loader.CacheDir = c.compileCache(cacheDir)
	defer loader.Pools.Close()
	// The KV database lives in the data dir: opened whenever there is one
	// (a deploy may bring KV stores), or when the manifest declares stores.
	if fl != nil {
		loader.KV = fl.KV() // the fleet's buckets, not the data dir's file
	} else if st != nil || needsKV(m) {
		kvDir := f.dataDir
		if st != nil {
			kvDir = st.Dir()
		}
		db, err := openKV(kvDir)
		if err != nil {
			return err
		}
		defer db.Close()
		loader.KV = db
		sweepCtx, stopSweep := context.WithCancel(ctx)
		defer stopSweep()
		go sweepKV(sweepCtx, db, time.Minute, log)
	}
	loader.Progress = compileProgress(cmd.ErrOrStderr(), eng.Name())
	metrics := admin.NewMetrics(loader.Pools)
	loader.Linker.OnError = metrics.HostcallError
	readCache := loader.Cache
	metrics.RegisterCache(readCache)
	srv := server.New(server.Config{
		Logger:                 log,
		MaxConcurrentSandboxes: m.Host.MaxConcurrentSandboxes,
		MaxWaitingSandboxes:    m.Host.MaxWaitingSandboxes,
		SandboxTimeout:         m.Host.SandboxTimeout,
		ReadStallTimeout:       m.Host.ClientReadStall,
		WriteStallTimeout:      m.Host.ClientWriteStall,
		Metrics:                metrics,
	})
	metrics.RegisterTier(srv.Active)

	var adm *admin.Admin
	if st != nil {
		adm, err = admin.New(admin.Config{Store: st, Server: srv, Loader: loader, Cache: readCache, Metrics: metrics, Token: f.adminToken, Pprof: f.adminPprof, Logger: log, KV: loader.KV,
			GuestErrors: guestErrors, Engine: eng.Name(), Fleet: fl, AdminURL: adminURLOf(adminLn), KeptVersions: f.keptVersions})
		if err != nil {
			return err
		}
	}
	serving := ""
	switch {
	case len(args) == 1 && isPackage(args[0]):
		pkg, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("module %s: %w", args[0], err)
		}
		staged, err := st.Stage(pkg, admin.DefaultMaxUploadBytes)
		pkg.Close()
		if err != nil {
			return fmt.Errorf("package %s: %w", args[0], err)
		}
		wasm, moduleManifest = staged.Wasm, staged.Manifest
		staged.Discard()
		if c.configPath != "" {
			moduleManifest = m
		}
		fallthrough
	case len(args) == 1:
		if moduleManifest == nil {
			moduleManifest = m
		}
		v, err := loader.Load(ctx, "dev", wasm, moduleManifest)
		if err != nil {
			return fmt.Errorf("load %s: %w", args[0], err)
		}
		srv.Activate(v)
		serving = args[0]
	default:
		n, err := adm.Restore(ctx)
		if err != nil {
			return fmt.Errorf("active version in %s: %w", st.Dir(), err)
		}
		if n > 0 {
			serving = "version " + strconv.Itoa(n) + " from " + st.Dir()
			break
		}
		v, err := loader.Load(ctx, "welcome", admin.WelcomeModule(adminURL), config.Default())
		if err != nil {
			return fmt.Errorf("welcome guest: %w", err)
		}
		srv.Activate(v)
		serving = "the welcome page (nothing deployed yet)"
	}

	lc, err := f.tls.listenConfig(flags, m.Host, log)
	if err != nil {
		return err
	}
	hs, sln := srv.HTTPServer(ln, lc)
	hs.ReadHeaderTimeout, hs.MaxHeaderBytes = 10*time.Second, m.Host.MaxHeaderBytes
	scheme := "http://"
	if lc.TLS != nil {
		scheme = "https://"
	}
	errc := make(chan error, 3)
	go func() { errc <- hs.Serve(sln) }()
	var as *http.Server
	if adminLn != nil {
		as = &http.Server{Handler: adm.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- as.Serve(adminLn) }()
	}
	log.Info("serving", append([]any{"addr", scheme + ln.Addr().String(), "module", serving, "engine", eng.Name(),
		"admin", adminURL, "data_dir", dataDirOf(st), "max_origin_requests", loader.Pools.MaxInFlight()}, append(server.StoresLogAttrs(srv.Active(), loader.KV), "services", srv.Active().Env.Services().String())...)...)
	// The start-up lines are on stderr before the banner is on stdout: a
	// supervisor that waits for the banner finds them.
	flushStderr()
	fmt.Fprintf(cmd.OutOrStdout(), "edgehost: serving %s on %s%s (Ctrl-C to stop)\n", serving, scheme, ln.Addr())
	if adminURL != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "edgehost: admin API on %s, data in %s\n", adminURL, st.Dir())
	}
	fleetDone := make(chan struct{})
	if fl != nil {
		go func() { adm.RunFleet(ctx); close(fleetDone) }()
		fmt.Fprintf(cmd.OutOrStdout(), "edgehost: in fleet %q as node %q\n", fl.Service(), fl.Node())
	} else {
		close(fleetDone)
	}
	if f.watch != "" {
		w := &watcher{dir: f.watch, module: args[0], load: watchLoad(c, loader, args[0], log), srv: srv, log: log,
			out: cmd.OutOrStdout(), errw: cmd.ErrOrStderr()}
		go func() {
			if err := w.run(ctx); err != nil {
				errc <- err
			}
		}()
		fmt.Fprintf(cmd.OutOrStdout(), "edgehost: watching %s for changes\n", f.watch)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), m.Host.SandboxTimeout+5*time.Second)
	defer cancel()
	if as != nil {
		if err := as.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("admin API shutdown", "err", err)
		}
	}
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-fleetDone
	if adm != nil {
		return adm.Close(sctx)
	}
	return nil
}

func adminURLOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return "http://" + ln.Addr().String()
}

// isPackage reports whether MODULE names a package .tar.gz.
func isPackage(path string) bool {
	return strings.HasSuffix(path, ".tar.gz") || strings.HasSuffix(path, ".tgz")
}

func dataDirOf(st *store.Store) string {
	if st == nil {
		return ""
	}
	return st.Dir()
}
