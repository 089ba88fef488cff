// Package acl holds Compute ACLs (README.md, "Platform services"): named
// lists of IP prefixes with an action, answered by longest-prefix match
// for IPv4 and IPv6, as fastly_acl.lookup does (abi/README.md).
//
// An ACL is immutable once built and safe for concurrent lookups.
package acl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Actions an entry may carry, as Fastly's ACL API spells them.
const (
	ActionAllow = "ALLOW"
	ActionBlock = "BLOCK"
)

// Entry is one ACL entry: a prefix (its address masked to its length)
// and its action, ActionAllow or ActionBlock.
type Entry struct {
	Prefix netip.Prefix
	Action string
}

// MarshalJSON writes the entry as Compute's lookup answers it:
// {"prefix":"192.0.2.0/24","action":"BLOCK"}.
func (e Entry) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// AppendJSON appends the entry's JSON (as MarshalJSON writes it) to b.
func (e Entry) AppendJSON(b []byte) []byte {
	b = append(b, `{"prefix":"`...)
	b = e.Prefix.AppendTo(b)
	b = append(b, `","action":`...)
	b = strconv.AppendQuote(b, e.Action)
	return append(b, '}')
}

// ACL is a set of entries. The zero ACL is empty.
type ACL struct {
	entries map[netip.Prefix]string // masked prefix -> action
	v4, v6  []int                   // prefix lengths present, longest first
}

// New builds an ACL from entries, in order: a later entry for the same
// prefix replaces an earlier one. Prefixes are masked to their length.
// Errors: an invalid prefix, an action other than ALLOW or BLOCK.
func New(entries []Entry) (*ACL, error) {
	a := &ACL{entries: make(map[netip.Prefix]string, len(entries))}
	for i, e := range entries {
		if !e.Prefix.IsValid() {
			return nil, fmt.Errorf("entry %d: invalid prefix", i)
		}
		act, err := action(e.Action)
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i, e.Prefix, err)
		}
		a.entries[e.Prefix.Masked()] = act
	}
	a.index()
	return a, nil
}

func (a *ACL) index() {
	var seen4, seen6 [129]bool
	a.v4, a.v6 = nil, nil
	for p := range a.entries {
		if p.Addr().Is4() {
			if !seen4[p.Bits()] {
				seen4[p.Bits()] = true
				a.v4 = append(a.v4, p.Bits())
			}
		} else if !seen6[p.Bits()] {
			seen6[p.Bits()] = true
			a.v6 = append(a.v6, p.Bits())
		}
	}
	desc := func(x, y int) int { return y - x }
	slices.SortFunc(a.v4, desc)
	slices.SortFunc(a.v6, desc)
}

func action(s string) (string, error) {
	switch u := strings.ToUpper(s); u {
	case ActionAllow, ActionBlock:
		return u, nil
	}
	return "", fmt.Errorf("action %q: want %q or %q", s, ActionAllow, ActionBlock)
}

// Parse reads an ACL in the JSON format of Fastly's ACL API (the one
// Viceroy reads too): {"entries": [{"op": "create", "prefix":
// "192.0.2.0/24", "action": "BLOCK"}, ...]}. op is "create", "update"
// (both add or replace the entry) or "delete" (removes it); absent means
// create. A prefix without a length is a single address (/32 or /128).
// Errors name the entry's index and what is wrong with it.
func Parse(data []byte) (*ACL, error) {
	var doc struct {
		Entries *[]struct {
			Op     string `json:"op"`
			Prefix string `json:"prefix"`
			Action string `json:"action"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("want a JSON object {\"entries\": [...]}: %w", err)
	}
	if doc.Entries == nil {
		return nil, errors.New(`want a JSON object {"entries": [...]}: no entries key`)
	}
	a := &ACL{entries: make(map[netip.Prefix]string, len(*doc.Entries))}
	for i, e := range *doc.Entries {
		p, err := ParsePrefix(e.Prefix)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		switch strings.ToLower(e.Op) {
		case "", "create", "update":
			act, err := action(e.Action)
			if err != nil {
				return nil, fmt.Errorf("entry %d (%s): %w", i, e.Prefix, err)
			}
			a.entries[p] = act
		case "delete":
			delete(a.entries, p)
		default:
			return nil, fmt.Errorf("entry %d (%s): op %q: want create, update or delete", i, e.Prefix, e.Op)
		}
	}
	a.index()
	return a, nil
}

// ParsePrefix parses "192.0.2.0/24", "2001:db8::/32" or a bare address,
// masked to its length. Errors: not an address or prefix, a zone.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("prefix %q: want an address or address/length", s)
		}
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("prefix %q: want an address or address/length", s)
	}
	return p.Masked(), nil
}

// Len is the number of entries.
func (a *ACL) Len() int { return len(a.entries) }

// Lookup returns the entry with the longest prefix holding ip, and false
// when none does. An IPv4 address matches only IPv4 prefixes and an IPv6
// address (an IPv4-mapped one too) only IPv6 prefixes, as on Compute.
func (a *ACL) Lookup(ip netip.Addr) (Entry, bool) {
	lens := a.v6
	if ip.Is4() {
		lens = a.v4
	}
	for _, l := range lens {
		p, err := ip.Prefix(l)
		if err != nil {
			continue
		}
		if act, ok := a.entries[p]; ok {
			return Entry{Prefix: p, Action: act}, true
		}
	}
	return Entry{}, false
}
