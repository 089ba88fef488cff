package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/edgehost/edgehost/internal/admin"
)

func newPurgeCmd() *cobra.Command {
	var (
		a         adminClient
		soft, all bool
	)
	cmd := &cobra.Command{
		Use:   "purge SURROGATE_KEY | purge --all",
		Short: "Purge a running host's readthrough cache: the objects carrying a surrogate key, or everything",
		Long: "purge KEY removes every cached object whose Surrogate-Key (or cache override) carries KEY;\n" +
			"--soft marks them stale instead, so that they revalidate (or serve stale within their\n" +
			"stale-while-revalidate window). purge --all empties the cache. The next request sees it.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/purge"
			switch {
			case all && len(args) == 0:
			case !all && len(args) == 1 && args[0] != "":
				path += "/" + url.PathEscape(args[0])
				if soft {
					path += "?soft=true"
				}
			default:
				return errors.New("purge: give one surrogate key, or --all")
			}
			var out admin.PurgeResult
			if err := a.do(cmd.Context(), http.MethodPost, path, nil, "", &out); err != nil {
				return err
			}
			what := "purged"
			if out.Soft {
				what = "marked stale"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d objects\n", what, out.Purged)
			return nil
		},
	}
	cmd.Flags().BoolVar(&soft, "soft", false, "mark the objects stale instead of removing them")
	cmd.Flags().BoolVar(&all, "all", false, "purge every object")
	a.register(cmd)
	return cmd
}
