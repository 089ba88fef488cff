package fleet

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultEmbeddedAddr is where `serve --cluster embedded` listens unless
// a setting says otherwise: NATS's standard client port on loopback.
const DefaultEmbeddedAddr = "127.0.0.1:4222"

// EmbeddedConfig configures an in-process NATS server with JetStream.
type EmbeddedConfig struct {
	// Dir is where JetStream keeps its streams (edgehost uses
	// DATA_DIR/nats).
	Dir string
	// Addr is the client listen address, host:port; "" is
	// DefaultEmbeddedAddr, port 0 picks a free one.
	Addr string
	// Name is the server's name (unique in a cluster); "" derives one
	// from Addr.
	Name string
	// ClusterAddr, when set, is the host:port of the cluster (route)
	// listener, and Routes the other servers' route URLs
	// (nats://host:port): the server then joins a JetStream cluster named
	// ClusterName ("edgehost" when "").
	ClusterAddr string
	Routes      []string
	ClusterName string
	// NoAdvertise keeps the server from telling clients about the other
	// servers of its cluster.
	NoAdvertise bool
	// MaxPayload is the largest message in bytes (0: NATS's 1 MiB); KV
	// values in fleet mode must fit in it.
	MaxPayload int32
}

// Embedded is a NATS server running in this process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream and waits (at most
// 10 s) until it takes connections. Errors: a bad address, a port in use,
// JetStream failing to start on Dir.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultEmbeddedAddr
	}
	host, port, err := splitAddr(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: address %q: %w", cfg.Addr, err)
	}
	if cfg.Name == "" {
		cfg.Name = "edgehost-" + strconv.Itoa(port)
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.Dir),
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: cfg.MaxPayload,
	}
	if port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if cfg.ClusterAddr != "" {
		ch, cp, err := splitAddr(cfg.ClusterAddr)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: cluster address %q: %w", cfg.ClusterAddr, err)
		}
		opts.Cluster.Name = cfg.ClusterName
		if opts.Cluster.Name == "" {
			opts.Cluster.Name = "edgehost"
		}
		opts.Cluster.Host, opts.Cluster.Port, opts.Cluster.NoAdvertise = ch, cp, cfg.NoAdvertise
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("embedded NATS: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded NATS: not ready after 10s (is the port in use?)")
	}
	return &Embedded{srv: s}, nil
}

// URL returns the client URL, nats://host:port.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it to end.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func splitAddr(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q", p)
	}
	return h, n, nil
}
