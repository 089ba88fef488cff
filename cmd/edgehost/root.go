package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/engine/wasmtimeengine"
	"github.com/edgehost/edgehost/internal/engine/wazeroengine"
	"github.com/edgehost/edgehost/internal/erl"
	"github.com/edgehost/edgehost/internal/guestbuild"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// common holds the flags every guest-running command shares.
type common struct {
	configPath string
	engineName string
	cacheDir   string
	logLevel   string
	logFormat  string
	toolchain  string
}

func (c *common) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&c.configPath, "config", "C", "", "fastly.toml manifest (default: the module folder's, else ./fastly.toml when present)")
	cmd.Flags().StringVar(&c.engineName, "engine", "", "WebAssembly engine: wazero (default; pure Go, fast start-up) or wasmtime (Cranelift; faster guest code, slower compile)")
	cmd.Flags().StringVar(&c.cacheDir, "cache-dir", "", "folder for the engine's compiled code, kept across runs and shareable by several edgehost processes (default: DATA_DIR/cache for a serve that keeps a data dir, else none: each start compiles the guest)")
	cmd.Flags().StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&c.logFormat, "log-format", "text", "log format: text (key=value lines) or json (one JSON object a line)")
	toolchainFlag(cmd, &c.toolchain)
}

// toolchainFlag registers --toolchain, the compiler for a MODULE that is
// a folder.
func toolchainFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "toolchain", "auto", "compiler for a guest folder: auto (TinyGo when $"+guestbuild.TinyGoEnv+" or tinygo on PATH is found, else Go), tinygo, go")
}

// findCompiler resolves a --toolchain value.
func findCompiler(ctx context.Context, toolchain string) (guestbuild.Compiler, error) {
	tc, err := guestbuild.ParseToolchain(toolchain)
	if err != nil {
		return guestbuild.Compiler{}, err
	}
	return guestbuild.Find(ctx, tc)
}

func (c *common) logger(cmd *cobra.Command) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.logFormat {
	case "", "text":
		return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.logFormat)
}

// manifest loads -C, else moduleDir/fastly.toml, else ./fastly.toml, else
// the defaults.
func (c *common) manifest(moduleDir string) (*config.Manifest, error) {
	if c.configPath != "" {
		return config.Load(c.configPath)
	}
	for _, dir := range []string{moduleDir, "."} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "fastly.toml")
		if _, err := os.Stat(p); err == nil {
			return config.Load(p)
		}
	}
	return config.Default(), nil
}

// engine returns the engine --engine (else the manifest) names, keeping
// compiled code in --cache-dir, else in cacheDir ("" keeps none).
func (c *common) engine(m *config.Manifest, cacheDir string) (engine.Engine, error) {
	cacheDir = c.compileCache(cacheDir)
	name := c.engineName
	if name == "" {
		name = m.Host.Engine
	}
	cfg := engine.Config{MemoryLimitBytes: uint64(m.Host.SandboxMemoryMiB) << 20, CacheDir: cacheDir,
		Tiered: m.Host.TieredCompile, TieredMinBytes: m.Host.TieredCompileMinKiB << 10}
	switch name {
	case "", "wazero":
		return wazeroengine.New(cfg)
	case "wasmtime":
		return wasmtimeengine.New(cfg)
	}
	return nil, fmt.Errorf("--engine %q: this build knows wazero and wasmtime", name)
}

// compileCache is the folder that keeps compiled code (and the snapshots
// of pre-initialized guests): --cache-dir, else cacheDir ("" keeps none).
func (c *common) compileCache(cacheDir string) string {
	if c.cacheDir != "" {
		return c.cacheDir
	}
	return cacheDir
}

// loadModule resolves MODULE (a .wasm file or a folder with a Go main
// package, built now) to wasm bytes and the folder to look for fastly.toml.
func loadModule(ctx context.Context, path, toolchain string, log *slog.Logger) ([]byte, string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("module %s: %w", path, err)
	}
	if !st.IsDir() {
		b, err := server.ReadModule(path)
		return b, filepath.Dir(path), err
	}
	tmp, err := os.MkdirTemp("", "edgehost-build-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "main.wasm")
	c, err := findCompiler(ctx, toolchain)
	if err != nil {
		return nil, "", err
	}
	log.Info("building guest", "dir", path, "toolchain", c.Toolchain, "compiler", c.String(), "path", c.Path)
	if err := c.Build(ctx, path, out); err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(out)
	return b, path, err
}

// newLoader builds the loader: the engine, the hostcall linker, the
// host-wide pools and the dynamic backend policy. listeners are this
// host's own listen addresses (refused to dynamic backends on every local
// address); allowPrivate opens loopback and private ranges (local
// development). Errors: a bad allowed_backend_targets entry.
func newLoader(eng engine.Engine, m *config.Manifest, log *slog.Logger, listeners []string, allowPrivate bool) (*server.Loader, error) {
	guard, err := pool.NewGuard(pool.GuardConfig{
		Allowed:      m.Host.AllowedBackendTargets,
		AllowPrivate: allowPrivate,
		Listeners:    listeners,
	})
	if err != nil {
		return nil, fmt.Errorf("allowed_backend_targets: %w", err)
	}
	policy := &hostcall.Policy{Guard: guard}
	if m.Host.AllowedBackendTargets != nil && len(m.Host.AllowedBackendTargets) == 0 {
		policy.Disabled = true
	}
	host := m.Host
	return &server.Loader{
		Engine: eng,
		Linker: hostcall.NewLinker(log),
		Pools: pool.NewManagerConfig(pool.ManagerConfig{
			Logger:      log,
			MaxPools:    m.Host.MaxOriginPools,
			MaxInFlight: originRequests(m.Host),
		}),
		Logger: log,
		Policy: policy,
		Env:    server.GuestEnvFor(m),
		// The readthrough cache, host wide: it outlives deploys, as the
		// pools do, and the admin API serves its purges and counters.
		Cache: cache.New(cache.Config{MaxBytes: int64(m.Host.CacheMemoryMiB) << 20}),
		// One rate limiting store for the host: every sandbox of every
		// version counts in it.
		RateLimits: erl.New(nil),
		Host:       &host,
	}, nil
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "edgehost",
		Short:         "A self-hostable, Compute-style WebAssembly edge host",
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version answers "edgehost VERSION": a name and a version, the
		// shape Fastly's CLI reads from a local server binary.
		Version: version,
	}
	root.SetVersionTemplate("edgehost {{.Version}}\n")
	root.AddCommand(clientCommands()...)
	root.AddCommand(newServeCmd(), newRunCmd(), newBuildCmd(), &cobra.Command{
		Use:   "version",
		Short: "Print the edgehost version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "edgehost", version)
		},
	})
	return root
}

func newBuildCmd() *cobra.Command {
	var out, toolchain string
	cmd := &cobra.Command{
		Use:   "build DIR",
		Short: "Build a guest folder (Go main package) to .wasm",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				out = strings.TrimSuffix(filepath.Base(filepath.Clean(args[0])), "/") + ".wasm"
			}
			c, err := findCompiler(cmd.Context(), toolchain)
			if err != nil {
				return err
			}
			if err := c.Build(cmd.Context(), args[0], out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s with %s\n", out, c)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output .wasm path (default: DIR's name + .wasm)")
	toolchainFlag(cmd, &toolchain)
	return cmd
}
