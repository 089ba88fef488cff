package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingSink is a writer that counts its writes.
type countingSink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (s *countingSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.buf.Write(p)
}

func (s *countingSink) snapshot() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String(), s.writes
}

func TestBatchWriter(t *testing.T) {
	tests := []struct {
		name    string
		writers int
		lines   int // per writer
	}{
		{"one writer", 1, 5000},
		{"eight writers", 8, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &countingSink{}
			bw := newBatchWriter(sink)
			var wg sync.WaitGroup
			for w := range tt.writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range tt.lines {
						fmt.Fprintf(bw, "writer=%d line=%d %s\n", w, i, strings.Repeat("x", 60))
					}
				}()
			}
			wg.Wait()
			bw.Close()
			fmt.Fprintf(bw, "after close\n")
			got, writes := sink.snapshot()
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if want := tt.writers*tt.lines + 1; len(lines) != want {
				t.Fatalf("%d lines, want %d", len(lines), want)
			}
			if lines[len(lines)-1] != "after close" {
				t.Errorf("last line %q, want the write after Close", lines[len(lines)-1])
			}
			next := make([]int, tt.writers) // each writer's lines in its order
			for _, l := range lines[:len(lines)-1] {
				var w, i int
				if _, err := fmt.Sscanf(l, "writer=%d line=%d", &w, &i); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if i != next[w] {
					t.Fatalf("writer %d: line %d after %d", w, i, next[w]-1)
				}
				next[w]++
			}
			// About 90 bytes a line: a 64 KiB batch holds over 700.
			if max := tt.writers*tt.lines/500 + 10; writes > max {
				t.Errorf("%d writes for %d lines, want at most %d", writes, tt.writers*tt.lines, max)
			}
		})
	}
}

func TestBatchWriterDelay(t *testing.T) {
	sink := &countingSink{}
	bw := newBatchWriter(sink)
	defer bw.Close()
	start := time.Now()
	fmt.Fprintf(bw, "one line\n")
	for {
		if got, _ := sink.snapshot(); got == "one line\n" {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("a lone line was not written out within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	if d := time.Since(start); d < batchDelay/2 {
		t.Errorf("a lone line written out after %v, want it to wait about %v for others", d, batchDelay)
	}
}

// discardCounter counts the writes reaching it.
type discardCounter struct{ writes int }

func (d *discardCounter) Write(p []byte) (int, error) { d.writes++; return len(p), nil }

// BenchmarkBatchWriter is one request log line's write (about 230 bytes)
// through a batchWriter, with the writes that reach the file per line.
func BenchmarkBatchWriter(b *testing.B) {
	line := []byte("time=2026-12-02T19:00:00.000Z level=INFO msg=request request_id=3f2a9c0e1b7d4a65 method=GET path=/ proto=HTTP/1.1 status=200 bytes=78 duration_ms=0.041 ttfb_ms=0.03 sandbox=fresh backend_requests=0 version=dev\n")
	sink := &discardCounter{}
	bw := newBatchWriter(sink)
	b.ReportAllocs()
	for b.Loop() {
		bw.Write(line)
	}
	bw.Close()
	b.ReportMetric(float64(sink.writes)/float64(b.N), "writes/op")
}
