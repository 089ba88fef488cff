// Package shield holds the shielding sites of fastly.toml
// ([local_server.shielding_sites], README.md "Platform services"): the
// POP this host plays ("local") and the other shield POPs with the URLs
// that reach them, for fastly_shielding.shield_info and
// backend_for_shield (abi/README.md).
package shield

import (
	"fmt"
	"net/url"
	"sort"
)

// Site is one shielding site: either the POP this host runs as (Local),
// or a remote POP reached over Unencrypted (http) and Encrypted (https,
// or http for local testing, as Fastly's local server allows) URLs.
type Site struct {
	Name                   string
	Local                  bool
	Unencrypted, Encrypted *url.URL
}

// Sites are the shielding sites by name. A nil Sites has none.
type Sites map[string]Site

// Names returns the site names, sorted.
func (s Sites) Names() []string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Info is the answer of shield_info for site name, in the layout Fastly's
// SDKs read: one byte, 1 when this host is that POP and 0 otherwise, then
// the unencrypted target and the encrypted target, each followed by a NUL
// byte (both empty for the local POP). ok is false for an unknown name.
func (s Sites) Info(name string) (info []byte, ok bool) {
	site, ok := s[name]
	if !ok {
		return nil, false
	}
	if site.Local {
		return []byte{1, 0, 0}, true
	}
	info = append(info, 0)
	info = append(info, site.Unencrypted.String()...)
	info = append(info, 0)
	info = append(info, site.Encrypted.String()...)
	return append(info, 0), true
}

// Target finds what backend_for_shield was given: a site name (the Go
// SDK passes the shield's name; its encrypted URL is used) or one of the
// target URLs shield_info answered (the JS SDK passes those). It returns
// the site, the URL to reach and whether it is the encrypted one. Errors:
// an unknown name or URL, the local site (this host needs no backend to
// reach itself).
func (s Sites) Target(nameOrURL string) (site Site, target *url.URL, encrypted bool, err error) {
	if site, ok := s[nameOrURL]; ok {
		if site.Local {
			return Site{}, nil, false, fmt.Errorf("shield %q is this host (local): it has no backend", nameOrURL)
		}
		return site, site.Encrypted, true, nil
	}
	for _, n := range s.Names() {
		site := s[n]
		if site.Local {
			continue
		}
		if site.Encrypted.String() == nameOrURL {
			return site, site.Encrypted, true, nil
		}
		if site.Unencrypted.String() == nameOrURL {
			return site, site.Unencrypted, false, nil
		}
	}
	return Site{}, nil, false, fmt.Errorf("no shielding site named %q and no site has that target", nameOrURL)
}
