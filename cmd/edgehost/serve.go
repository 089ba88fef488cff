package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgehost/edgehost/host/server"
)

func newServeCmd() *cobra.Command {
	var c common
	var addr string
	cmd := &cobra.Command{
		Use:   "serve MODULE",
		Short: "Serve downstream HTTP with a guest: a .wasm file or a folder with a Go main package",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := c.logger(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			wasm, dir, err := loadModule(ctx, args[0], log)
			if err != nil {
				return err
			}
			m, err := c.manifest(dir)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("addr") {
				addr = m.Host.Addr
			}
			eng, err := c.engine(m, "")
			if err != nil {
				return err
			}
			defer eng.Close(context.Background())
			loader := newLoader(eng, m, log, []string{m.Host.AdminAddr})
			defer loader.Pools.Close()
			v, err := loader.Load(ctx, "dev", wasm, m)
			if err != nil {
				return fmt.Errorf("load %s: %w", args[0], err)
			}
			srv := server.New(server.Config{
				Logger:                 log,
				MaxConcurrentSandboxes: m.Host.MaxConcurrentSandboxes,
				SandboxTimeout:         m.Host.SandboxTimeout,
			})
			srv.Activate(v)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: m.Host.MaxHeaderBytes}
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			log.Info("serving", "addr", "http://"+ln.Addr().String(), "module", args[0], "engine", eng.Name())
			fmt.Fprintf(cmd.OutOrStdout(), "edgehost: serving %s on http://%s (Ctrl-C to stop)\n", args[0], ln.Addr())
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			log.Info("shutting down: waiting for requests in flight")
			sctx, cancel := context.WithTimeout(context.Background(), m.Host.SandboxTimeout+5*time.Second)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:7676", "downstream listen address")
	return cmd
}
