package main

import (
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/server"
)

// tlsFlags are serve's downstream HTTPS and HTTP/2 flags; each wins over
// its [edgehost] key (README.md, "HTTPS and HTTP/2").
type tlsFlags struct {
	cert, key, clientCA, clientAuth string
	selfSigned, h2c                 bool
}

func (t *tlsFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&t.cert, "tls-cert", "", "serve HTTPS (HTTP/2 by ALPN) with this PEM certificate chain (tls_cert); needs --tls-key")
	fl.StringVar(&t.key, "tls-key", "", "PEM private key of --tls-cert (tls_key)")
	fl.BoolVar(&t.selfSigned, "tls-self-signed", false, "serve HTTPS with a certificate for localhost made at start, for development (tls_self_signed)")
	fl.StringVar(&t.clientCA, "tls-client-ca", "", "verify client certificates against the CAs in this PEM file: mutual TLS (tls_client_ca)")
	fl.StringVar(&t.clientAuth, "tls-client-auth", "require", `with --tls-client-ca: "require" refuses clients without a good certificate, "request" serves them and lets the guest see the result (tls_client_auth)`)
	fl.BoolVar(&t.h2c, "h2c", false, "serve HTTP/2 without TLS (prior knowledge) beside HTTP/1.1 (h2c)")
}

// listenConfig merges the flags over the manifest's keys. Errors name the
// file or setting at fault.
func (t *tlsFlags) listenConfig(flags *pflag.FlagSet, h config.Host, log *slog.Logger) (server.ListenConfig, error) {
	pick := func(name, flag, file string) string {
		if flags.Changed(name) {
			return flag
		}
		return file
	}
	o := server.TLSOptions{
		CertFile:     pick("tls-cert", t.cert, h.TLSCert),
		KeyFile:      pick("tls-key", t.key, h.TLSKey),
		ClientCAFile: pick("tls-client-ca", t.clientCA, h.TLSClientCA),
		ClientAuth:   pick("tls-client-auth", t.clientAuth, h.TLSClientAuth),
		SelfSigned:   t.selfSigned || (!flags.Changed("tls-self-signed") && h.TLSSelfSigned),
	}
	lc, err := o.ListenConfig()
	if err != nil {
		return lc, err
	}
	lc.H2C = t.h2c || (!flags.Changed("h2c") && h.H2C)
	lc.Logger = log
	return lc, nil
}
