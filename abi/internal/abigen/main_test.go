//go:build !wasip1

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

// repoRoot is the repository root seen from this package's directory.
const repoRoot = "../../.."

// TestGeneratedFilesUpToDate runs the generator into a temporary
// directory and fails for every file that regenerating would change: the
// generated files are never edited by hand (run go generate in abi/).
func TestGeneratedFilesUpToDate(t *testing.T) {
	out := t.TempDir()
	if err := run(repoRoot, out); err != nil {
		t.Fatal(err)
	}
	files, err := generate(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Fatalf("generated %d files, want 5", len(files))
	}
	for _, f := range files {
		fresh, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(f.path)))
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(f.path)))
		if err != nil {
			t.Errorf("%s: %v (run go generate in abi/)", f.path, err)
			continue
		}
		if !bytes.Equal(fresh, have) {
			t.Errorf("%s differs from what abigen generates: run go generate in abi/ (cd abi && go generate ./...)", f.path)
		}
	}
}

// TestNames pins the Go names of hostcalls and parameters.
func TestNames(t *testing.T) {
	for _, tc := range []struct{ module, name, want string }{
		{abi.ModuleHTTPReq, "send_v2", "reqSendV2"},
		{abi.ModuleHTTPReq, "uri_get", "reqURIGet"},
		{abi.ModuleBackend, "get_ssl_min_version", "backendGetSSLMinVersion"},
		{abi.ModuleBackend, "get_connect_timeout_ms", "backendGetConnectTimeoutMs"},
		{abi.ModuleConfigStore, "open", "configStoreOpen"},
		{abi.ModuleABI, "init", "abiInit"},
		{abi.ModuleAsyncIO, "is_ready", "asyncIOIsReady"},
		{"fastly_http_cache", "lookup", "httpCacheLookup"},
	} {
		if got := funcName(abi.Hostcall{Module: tc.module, Name: tc.name}); got != tc.want {
			t.Errorf("funcName(%s.%s) = %q, want %q", tc.module, tc.name, got, tc.want)
		}
	}
	if got := camel("resp_handle_out", false); got != "RespHandleOut" {
		t.Errorf("camel(resp_handle_out) = %q", got)
	}
}

// TestParamNotation pins abi/README.md's notation of each parameter kind.
func TestParamNotation(t *testing.T) {
	for _, tc := range []struct {
		p    abi.Param
		want string
	}{
		{abi.Param{Name: "h", Kind: abi.KindHandle, Handle: abi.HandleRequest}, "`h` h(request)"},
		{abi.Param{Name: "hs", Kind: abi.KindHandleList, Handle: abi.HandlePendingRequest}, "`hs` list of h(pending_request)"},
		{abi.Param{Name: "ttl", Kind: abi.KindScalar, Type: "u32", Unit: abi.UnitSec, Size: 4}, "`ttl` u32 s"},
		{abi.Param{Name: "mode", Kind: abi.KindScalar, Type: "framing_headers_mode", Unit: abi.UnitEnum, Size: 4}, "`mode` framing_headers_mode (enum)"},
		{abi.Param{Name: "abi_version", Kind: abi.KindScalar, Type: "u64", Unit: abi.UnitNumber, Size: 8}, "`abi_version` u64 number"},
		{abi.Param{Name: "name", Kind: abi.KindIn}, "`name` str"},
		{abi.Param{Name: "options", Kind: abi.KindInStruct, Type: "next_request_options", Size: 8, Align: 8}, "`options` *next_request_options (8 bytes, read)"},
		{abi.Param{Name: "resp_out", Kind: abi.KindOut, Handle: abi.HandleResponse, Type: "response_handle", Size: 4, Align: 4}, "`resp_out` *h(response)"},
		{abi.Param{Name: "nwritten_out", Kind: abi.KindOut, Type: "num_bytes", Unit: abi.UnitBytes, Size: 4, Align: 4}, "`nwritten_out` *num_bytes bytes"},
		{abi.Param{Name: "addr_out", Kind: abi.KindOut, Type: "u8", Unit: abi.UnitBytes, Size: 16, Align: 1}, "`addr_out` *u8[16]"},
		{abi.Param{Name: "error_detail", Kind: abi.KindOut, Type: "send_error_detail", Size: 20, Align: 4}, "`error_detail` *send_error_detail (20 bytes)"},
		{abi.Param{Name: "value", Kind: abi.KindOutBuf}, "`value` buf"},
		{abi.Param{Name: "buf", Kind: abi.KindCursorBuf}, "`buf` mbuf"},
	} {
		if got := notation(tc.p); got != tc.want {
			t.Errorf("notation(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
