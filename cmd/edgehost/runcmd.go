package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/server"
)

func newRunCmd() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "run MODULE [ARGS...]",
		Short: "Run a guest once as a command, with the manifest's backends and stores; exit with its exit code",
		Long: "Run a guest once as a command. Flags after MODULE go to the guest, so\n" +
			`GOOS=wasip1 GOARCH=wasm go test -exec "edgehost run -C fastly.toml"` + "\nruns a guest's own tests.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := c.logger(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			wasm, dir, err := loadModule(ctx, args[0], c.toolchain, log)
			if err != nil {
				return err
			}
			m, err := c.manifest(dir)
			if err != nil {
				return err
			}
			// A single run gains nothing from tiered compilation: the
			// optimized code would come after the run, or never.
			m.Host.TieredCompile = false
			eng, err := c.engine(m, "")
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			loader, err := newLoader(eng, m, log, nil, m.Host.AllowPrivateBackends)
			if err != nil {
				return err
			}
			loader.CacheDir = c.compileCache("")
			defer loader.Pools.Close()
			if needsKV(m) {
				db, err := openKV(m.Host.DataDir)
				if err != nil {
					return err
				}
				defer db.Close()
				loader.KV = db
			}
			v, err := loader.Load(ctx, "run", wasm, m)
			if err != nil {
				return fmt.Errorf("load %s: %w", args[0], err)
			}
			// The guest gets a downstream request, as under Fastly's local
			// server, so guest tests that read it work.
			id := server.NewRequestID()
			sess := v.Env.NewSession(ctx, id, hostcall.CommandDownstream())
			defer sess.Close()
			rc := engine.RunConfig{
				Args:   args,
				Env:    server.SandboxEnv(v, id, nil),
				Stdin:  cmd.InOrStdin(),
				Stdout: cmd.OutOrStdout(),
				Stderr: cmd.ErrOrStderr(),
			}
			err = sess.RunGuest(func() error { return v.Module.Run(hostcall.WithSession(ctx, sess), rc) })
			if code, ok := guestExitCode(err); ok {
				return &exitCodeError{code: code}
			}
			return err
		},
	}
	cmd.Flags().SetInterspersed(false)
	c.register(cmd)
	return cmd
}
