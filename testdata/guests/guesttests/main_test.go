//go:build wasip1

package main

import (
	"os"
	"testing"
)

func TestPass(t *testing.T) {
	if 1+1 != 2 {
		t.Fatal("arithmetic")
	}
}

func TestFail(t *testing.T) {
	t.Fatal("this test fails on purpose")
}

func TestConfigStore(t *testing.T) {
	v, ok := lookup("settings", "greeting")
	if !ok || v != "hello from the manifest" {
		t.Fatalf("config store settings.greeting = %q, %v", v, ok)
	}
}

// TestDownstreamRequest: edgehost run gives the guest a downstream
// request, as Fastly's local test server does.
func TestDownstreamRequest(t *testing.T) {
	uri, st := downstreamURI()
	if st != 0 || uri != "http://example.com/" {
		t.Fatalf("downstream request URI %q, status %d", uri, st)
	}
}

// TestEnv: the guest environment of a command run, from the manifest.
func TestEnv(t *testing.T) {
	for k, want := range map[string]string{"FASTLY_POP": "GUESTTESTS", "FASTLY_SERVICE_ID": "guesttests", "FASTLY_SERVICE_VERSION": "0"} {
		if got := os.Getenv(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if os.Getenv("FASTLY_TRACE_ID") == "" {
		t.Error("FASTLY_TRACE_ID is not set")
	}
}
