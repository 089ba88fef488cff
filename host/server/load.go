package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/engine"
	"github.com/edgehost/edgehost/host/hostcall"
	"github.com/edgehost/edgehost/host/pool"
)

// Loader compiles guest modules into Versions: one engine, one hostcall
// linker, and the host-wide origin pools every version's backends use.
type Loader struct {
	Engine engine.Engine
	Linker *hostcall.Linker
	Pools  *pool.Manager
	Logger *slog.Logger
	// Policy is the dynamic backend policy; nil is the zero Policy (public
	// addresses only). One Policy for every version keeps pools shared.
	Policy *hostcall.Policy
	// Env is the base guest environment (FASTLY_* variables).
	Env [][2]string
}

// Load compiles wasm and binds it to manifest m as version id. Errors: an
// invalid module (wrapping engine.ErrInvalidModule), a link error naming
// the import, a backend that cannot be set up.
func (l *Loader) Load(ctx context.Context, id string, wasm []byte, m *config.Manifest) (*Version, error) {
	env, err := hostcall.NewEnv(l.envConfig(m))
	if err != nil {
		return nil, err
	}
	mod, err := l.Engine.Compile(ctx, wasm, l.Linker.Link())
	if err != nil {
		return nil, err
	}
	return &Version{ID: id, Module: mod, Env: env}, nil
}

func (l *Loader) envConfig(m *config.Manifest) hostcall.EnvConfig {
	cfg := hostcall.EnvConfig{
		Logger:       l.Logger,
		Pools:        l.Pools,
		ConfigStores: m.ConfigStores,
		Dictionaries: m.Dictionaries,
		Policy:       l.Policy,
		Env:          l.Env,
		Limits: hostcall.Limits{
			MaxPendingRequests:   m.Host.MaxPendingRequests,
			MaxBufferedBodyBytes: m.Host.MaxBodyBytes,
			MaxHeaderBytes:       m.Host.MaxHeaderBytes,
		},
	}
	for name, b := range m.Backends {
		cfg.Backends = append(cfg.Backends, hostcall.StaticBackend{Name: name, Settings: b.Conn, Timeouts: b.Timeouts})
	}
	return cfg
}

// GuestEnv returns the FASTLY_* environment for service version.
func GuestEnv(service string) [][2]string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return [][2]string{
		{"FASTLY_HOSTNAME", host},
		{"FASTLY_POP", "EDGEHOST"},
		{"FASTLY_REGION", "local"},
		{"FASTLY_SERVICE_ID", service},
		{"EDGEHOST", "1"},
	}
}

// ReadModule reads a .wasm file. Errors name the file.
func ReadModule(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	return b, nil
}
