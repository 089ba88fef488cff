package guesttest

import (
	"fmt"
	"os"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/engine/wasmtimeengine"
	"github.com/edgehost/edgehost/internal/engine/wazeroengine"
)

// EngineEnv is the environment variable naming the engine end-to-end
// tests run on: "wazero" (the default when unset) or "wasmtime".
const EngineEnv = "EDGEHOST_TEST_ENGINE"

// EngineNames lists every engine this binary has, in the order
// engine-parametrized tests run them (wasmtime needs cgo).
func EngineNames() []string {
	if wasmtimeengine.Available {
		return []string{"wazero", "wasmtime"}
	}
	return []string{"wazero"}
}

// EngineName returns the engine EngineEnv selects, "wazero" when unset.
func EngineName() string {
	if n := os.Getenv(EngineEnv); n != "" {
		return n
	}
	return "wazero"
}

// Engine returns a new engine of the kind EngineEnv selects. Errors: an
// unknown name, or the engine's own constructor error.
func Engine(cfg engine.Config) (engine.Engine, error) { return NewEngine(EngineName(), cfg) }

// NewEngine returns a new engine by name ("wazero" or "wasmtime").
func NewEngine(name string, cfg engine.Config) (engine.Engine, error) {
	switch name {
	case "wazero":
		return wazeroengine.New(cfg)
	case "wasmtime":
		return wasmtimeengine.New(cfg)
	}
	return nil, fmt.Errorf("%s=%q: want wazero or wasmtime", EngineEnv, name)
}
