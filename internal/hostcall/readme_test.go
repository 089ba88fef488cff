package hostcall

import (
	"flag"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

var updateREADME = flag.Bool("update", false, "rewrite the ABI support table in README.md")

// abiTable renders the README's ABI support table from Table().
func abiTable() string {
	byModule := map[string][]string{}
	for _, h := range Table() {
		byModule[h.Module] = append(byModule[h.Module], "`"+h.Name+"`")
	}
	modules := make([]string, 0, len(byModule))
	for m := range byModule {
		modules = append(modules, m)
	}
	sort.Strings(modules)
	var b strings.Builder
	b.WriteString("| module | implemented hostcalls |\n|---|---|\n")
	for _, m := range modules {
		names := byModule[m]
		sort.Strings(names)
		b.WriteString("| `" + m + "` | " + strings.Join(names, ", ") + " |\n")
	}
	b.WriteString("| any other `" + abi.ModulePrefix + "*` function | linked to a stub that returns `unsupported` (5); a function `abi.Hostcalls()` describes must have its described signature, any other keeps the import's own; its first call is logged once per module |\n")
	b.WriteString("| `" + abi.ModuleWASI + "` | provided by the engine |\n")
	return b.String()
}

// TestREADMEABITable keeps README.md's ABI support table equal to the
// hostcall table. Run with -update to rewrite it.
func TestREADMEABITable(t *testing.T) {
	const path = "../../README.md"
	const begin, end = "<!-- abi-table:begin -->\n", "<!-- abi-table:end -->"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", begin, end)
	}
	want := abiTable()
	if got := s[i+len(begin) : j]; got != want {
		if *updateREADME {
			if err := os.WriteFile(path, []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("README.md's ABI table is out of date; run go test ./internal/hostcall -run TestREADMEABITable -update\nwant:\n%s", want)
	}
}
