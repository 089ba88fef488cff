package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/kvstore"
	"github.com/edgehost/edgehost/internal/store"
)

// openKV opens the host's KV database in dataDir (the default data dir
// when ""). Errors: the directory cannot be made, or another process
// holds the database for longer than a second.
func openKV(dataDir string) (*kvstore.DB, error) {
	if dataDir == "" {
		d, err := store.DefaultDir()
		if err != nil {
			return nil, err
		}
		dataDir = d
	}
	return kvstore.Open(dataDir, time.Second)
}

// needsKV reports whether m declares KV stores.
func needsKV(m *config.Manifest) bool { return m != nil && len(m.KVStores) > 0 }

// newKVCmd is `edgehost kv list|get|put|delete`: a running host's KV
// stores through its admin API (README.md, "KV stores").
func newKVCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write a running host's KV stores (list, get, put, delete)",
	}
	var la adminClient
	var prefix string
	list := &cobra.Command{
		Use:   "list [STORE]",
		Short: "List the KV stores, or the keys of STORE (--prefix)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if len(args) == 0 {
				var out admin.KVStoreList
				if err := la.do(cmd.Context(), http.MethodGet, "/v1/kv", nil, "", &out); err != nil {
					return err
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "STORE\tKEYS\tBYTES")
				for _, s := range out.Stores {
					fmt.Fprintf(tw, "%s\t%d\t%d\n", s.Name, s.Keys, s.Bytes)
				}
				return tw.Flush()
			}
			cursor := ""
			for {
				q := url.Values{}
				if prefix != "" {
					q.Set("prefix", prefix)
				}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				var page admin.KVKeyPage
				if err := la.do(cmd.Context(), http.MethodGet, "/v1/kv/"+url.PathEscape(args[0])+"/keys?"+q.Encode(), nil, "", &page); err != nil {
					return err
				}
				for _, k := range page.Data {
					fmt.Fprintln(w, k)
				}
				if page.Meta.NextCursor == "" {
					return nil
				}
				cursor = page.Meta.NextCursor
			}
		},
	}
	list.Flags().StringVar(&prefix, "prefix", "", "only keys starting with this")
	la.register(list)

	var ga adminClient
	get := &cobra.Command{
		Use:   "get STORE KEY",
		Short: "Print the value of KEY",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var value []byte
			if err := ga.do(cmd.Context(), http.MethodGet, kvItemPath(args[0], args[1]), nil, "", &value); err != nil {
				return err
			}
			_, err := cmd.OutOrStdout().Write(value)
			return err
		},
	}
	ga.register(get)

	var pa adminClient
	var mode, metadata, file string
	var ttl uint32
	put := &cobra.Command{
		Use:   "put STORE KEY [VALUE]",
		Short: "Store VALUE (or --file, or stdin with -) under KEY",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body []byte
			switch {
			case file != "":
				b, err := os.ReadFile(filepath.Clean(file))
				if err != nil {
					return err
				}
				body = b
			case len(args) == 3 && args[2] != "-":
				body = []byte(args[2])
			case len(args) == 3:
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				body = b
			default:
				return fmt.Errorf("give VALUE, - for stdin, or --file")
			}
			q := url.Values{}
			if mode != "" {
				q.Set("mode", mode)
			}
			if ttl > 0 {
				q.Set("time_to_live_sec", strconv.FormatUint(uint64(ttl), 10))
			}
			path := kvItemPath(args[0], args[1])
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			pa.headers = map[string]string{}
			if metadata != "" {
				pa.headers["Metadata"] = metadata
			}
			var out struct {
				Generation uint64 `json:"generation"`
			}
			if err := pa.do(cmd.Context(), http.MethodPut, path, bytes.NewReader(body), "application/octet-stream", &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %s/%s (%d bytes), generation %d\n", args[0], args[1], len(body), out.Generation)
			return nil
		},
	}
	put.Flags().StringVar(&mode, "mode", "", "overwrite (default), add, append or prepend")
	put.Flags().StringVar(&metadata, "metadata", "", "metadata to store with the value")
	put.Flags().StringVar(&file, "file", "", "read the value from this file")
	put.Flags().Uint32Var(&ttl, "ttl", 0, "seconds until the entry expires (0: never)")
	pa.register(put)

	var da adminClient
	del := &cobra.Command{
		Use:   "delete STORE KEY",
		Short: "Delete KEY",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := da.do(cmd.Context(), http.MethodDelete, kvItemPath(args[0], args[1]), nil, "", nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s/%s\n", args[0], args[1])
			return nil
		},
	}
	da.register(del)

	cmd.AddCommand(list, get, put, del)
	return cmd
}

func kvItemPath(store, key string) string {
	return "/v1/kv/" + url.PathEscape(store) + "/keys/" + url.PathEscape(key)
}

// sweepKV removes expired KV entries every interval until ctx ends, so
// entries nobody reads again do not stay in the file (expired ones are
// invisible from the moment they expire either way).
func sweepKV(ctx context.Context, db *kvstore.DB, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := db.Sweep(); err != nil {
				log.Warn("kv: removing expired entries failed", "err", err)
			} else if n > 0 {
				log.Debug("kv: removed expired entries", "count", n)
			}
		}
	}
}
