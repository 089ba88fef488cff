package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/fleet"
)

// clusterFlags are serve's fleet flags (README.md, "Fleet"); each
// overrides its [edgehost] cluster_* setting.
type clusterFlags struct {
	urls, embeddedAddr, node, service, creds, nkey, tlsCA, tlsCert, tlsKey string
	replicas                                                               int
}

func (f *clusterFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.urls, "cluster", "", `join a fleet: NATS URLs, nats://host:4222[,...] (cluster_urls), or "embedded" to run a NATS server with JetStream in this process, on the data dir`)
	fl.StringVar(&f.embeddedAddr, "cluster-embedded-addr", "", "listen address of the embedded NATS server (cluster_embedded_addr, default "+fleet.DefaultEmbeddedAddr+")")
	fl.StringVar(&f.node, "cluster-node", "", "this node's name in the fleet (cluster_node, default the host name)")
	fl.StringVar(&f.service, "cluster-service", "", "the fleet's service name (cluster_service, default "+fleet.DefaultService+")")
	fl.StringVar(&f.creds, "cluster-creds", "", "NATS credentials file (cluster_creds)")
	fl.StringVar(&f.nkey, "cluster-nkey", "", "NATS NKey seed file (cluster_nkey)")
	fl.StringVar(&f.tlsCA, "cluster-tls-ca", "", "PEM file of CAs to trust for NATS (cluster_tls_ca)")
	fl.StringVar(&f.tlsCert, "cluster-tls-cert", "", "client certificate PEM file for NATS (cluster_tls_cert)")
	fl.StringVar(&f.tlsKey, "cluster-tls-key", "", "client key PEM file for NATS (cluster_tls_key)")
	fl.IntVar(&f.replicas, "cluster-replicas", 0, "replicas of the fleet's streams and buckets, 1 to 5 (cluster_replicas, default 1; 3 on a three-server cluster)")
}

// settings merges the flags over the manifest's cluster settings.
func (f *clusterFlags) settings(fl *pflag.FlagSet, c config.Cluster) config.Cluster {
	if fl.Changed("cluster") {
		c.URLs = nil
		for _, u := range strings.Split(f.urls, ",") {
			if u = strings.TrimSpace(u); u != "" {
				c.URLs = append(c.URLs, u)
			}
		}
	}
	for _, s := range []struct {
		flag string
		v    *string
		from string
	}{{"cluster-embedded-addr", &c.EmbeddedAddr, f.embeddedAddr}, {"cluster-node", &c.Node, f.node}, {"cluster-service", &c.Service, f.service},
		{"cluster-creds", &c.Creds, f.creds}, {"cluster-nkey", &c.NKey, f.nkey}, {"cluster-tls-ca", &c.TLSCA, f.tlsCA},
		{"cluster-tls-cert", &c.TLSCert, f.tlsCert}, {"cluster-tls-key", &c.TLSKey, f.tlsKey}} {
		if fl.Changed(s.flag) {
			*s.v = s.from
		}
	}
	if fl.Changed("cluster-replicas") {
		c.Replicas = f.replicas
	}
	return c
}

var nodeNameRE = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// joinFleet starts the embedded NATS server when asked and connects the
// node. stop undoes both. Errors: bad settings, the embedded server not
// starting.
func joinFleet(c config.Cluster, dataDir string, log *slog.Logger) (f *fleet.Fleet, stop func(), err error) {
	urls := c.URLs
	var emb *fleet.Embedded
	if len(urls) == 1 && urls[0] == "embedded" {
		emb, err = fleet.StartEmbedded(fleet.EmbeddedConfig{Dir: filepath.Join(dataDir, "nats"), Addr: c.EmbeddedAddr})
		if err != nil {
			return nil, nil, err
		}
		urls = []string{emb.URL()}
		log.Info("fleet: embedded NATS server with JetStream", "url", emb.URL(), "dir", filepath.Join(dataDir, "nats"))
	}
	for _, u := range urls {
		if u == "embedded" {
			return nil, nil, fmt.Errorf(`--cluster: "embedded" cannot be mixed with URLs`)
		}
	}
	node := c.Node
	if node == "" {
		h, _ := os.Hostname()
		node = strings.Trim(nodeNameRE.ReplaceAllString(h, "-"), "-")
		if len(node) > 64 {
			node = node[:64]
		}
	}
	f, err = fleet.Connect(fleet.Config{URLs: urls, Node: node, Service: c.Service, Replicas: c.Replicas,
		CredsFile: c.Creds, NKeyFile: c.NKey, TLSCA: c.TLSCA, TLSCert: c.TLSCert, TLSKey: c.TLSKey, Logger: log})
	if err != nil {
		if emb != nil {
			emb.Shutdown()
		}
		return nil, nil, err
	}
	return f, func() {
		f.Close()
		if emb != nil {
			emb.Shutdown()
		}
	}, nil
}
