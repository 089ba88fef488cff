package kvstore

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkDB: the database alone, without a guest: a lookup of a 64-byte
// value, a committed insert (fsync), and inserts from 32 goroutines at
// once (sharing commits).
//
//	go test -run '^$' -bench . ./internal/kvstore/
func BenchmarkDB(b *testing.B) {
	d, err := Open(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	d.Declare("s", nil)
	value := make([]byte, 64)
	d.Insert("s", "k", value, InsertOptions{})
	b.Run("lookup", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.Lookup("s", "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("insert", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := d.Insert("s", fmt.Sprint("k", i%1000), value, InsertOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("insert/parallel32", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(16) // 32 goroutines on 2 CPUs
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := d.Insert("s", fmt.Sprint("k", n.Add(1)%1000), value, InsertOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
