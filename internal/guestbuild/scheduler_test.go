package guestbuild_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/engine/wazeroengine"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestTinyGoScheduler: edgehost builds a TinyGo guest without a scheduler
// only when it starts no goroutine and sets no timer, and every guest
// runs as written: a goroutine's and a timer's work happen, and their
// guests are built with TinyGo's scheduler (asyncify's exports are in the
// module), a plain guest without it.
func TestTinyGoScheduler(t *testing.T) {
	c := guesttest.RequireTinyGo(t)
	tests := []struct {
		name, body string
		scheduler  bool
	}{
		{"plain", `os.Stdout.WriteString("done\n")`, false},
		{"goroutine", `ch := make(chan string); go func() { ch <- "done\n" }(); os.Stdout.WriteString(<-ch)`, true},
		{"timer", `<-time.After(time.Millisecond); os.Stdout.WriteString("done\n")`, true},
		{"sleep", `time.Sleep(time.Millisecond); os.Stdout.WriteString("done\n")`, false},
	}
	eng, err := wazeroengine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := "package main\n\nimport (\n\t\"os\"\n\t\"time\"\n)\n\nvar _ = time.Second\n\nfunc main() {\n\t" + tc.body + "\n}\n"
			write(t, filepath.Join(dir, "go.mod"), "module example.com/g\n\ngo 1.23\n")
			write(t, filepath.Join(dir, "main.go"), src)
			out := filepath.Join(dir, "g.wasm")
			if err := c.Build(context.Background(), dir, out); err != nil {
				t.Fatal(err)
			}
			wasm, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Contains(wasm, []byte("asyncify_start_unwind")); got != tc.scheduler {
				t.Errorf("built with the scheduler: %v, want %v", got, tc.scheduler)
			}
			m, err := eng.Compile(context.Background(), wasm, func(imp engine.Import) (engine.HostFunc, error) {
				return nil, errors.New("unexpected import " + imp.String())
			})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			var stdout, stderr bytes.Buffer
			if err := m.Run(context.Background(), engine.RunConfig{Stdout: &stdout, Stderr: &stderr}); err != nil {
				t.Fatalf("run: %v; stderr %q", err, stderr.String())
			}
			if strings.TrimSpace(stdout.String()) != "done" {
				t.Errorf("stdout %q, stderr %q; want done", stdout.String(), stderr.String())
			}
		})
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
