package kvstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T, dir string) *DB {
	t.Helper()
	d, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestInsertModesAndGenerations(t *testing.T) {
	d := open(t, t.TempDir())
	if err := d.Declare("s", nil); err != nil {
		t.Fatal(err)
	}
	g1, err := d.Insert("s", "k", []byte("mid"), InsertOptions{Metadata: []byte("m1")})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		value   string
		opts    InsertOptions
		wantErr error
		want    string
	}{
		{"append", "-end", InsertOptions{Mode: Append}, nil, "mid-end"},
		{"prepend", "start-", InsertOptions{Mode: Prepend}, nil, "start-mid-end"},
		{"add existing", "x", InsertOptions{Mode: Add}, ErrPreconditionFailed, "start-mid-end"},
		{"generation mismatch", "x", InsertOptions{IfGeneration: &g1}, ErrPreconditionFailed, "start-mid-end"},
		{"overwrite", "new", InsertOptions{}, nil, "new"},
	}
	last := g1
	for _, st := range steps {
		g, err := d.Insert("s", "k", []byte(st.value), st.opts)
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
		}
		if err == nil {
			if g <= last {
				t.Fatalf("%s: generation %d not above %d", st.name, g, last)
			}
			last = g
		}
		e, err := d.Lookup("s", "k")
		if err != nil || string(e.Value) != st.want {
			t.Fatalf("%s: lookup = %q, %v; want %q", st.name, e.Value, err, st.want)
		}
	}
	e, _ := d.Lookup("s", "k")
	if g, err := d.Insert("s", "k", []byte("cas"), InsertOptions{IfGeneration: &e.Generation}); err != nil || g <= e.Generation {
		t.Fatalf("matching generation: %d, %v", g, err)
	}
	if _, err := d.Insert("s", "absent", []byte("x"), InsertOptions{IfGeneration: &e.Generation}); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("if_generation_match on an absent key: %v", err)
	}
	if _, err := d.Insert("s", "fresh", []byte("x"), InsertOptions{Mode: Add}); err != nil {
		t.Fatalf("add of an absent key: %v", err)
	}
	if _, err := d.Insert("nostore", "k", nil, InsertOptions{}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("unknown store: %v", err)
	}
}

func TestBadKeysAndLimits(t *testing.T) {
	d := open(t, t.TempDir())
	d.Declare("s", nil)
	for _, k := range []string{"", strings.Repeat("a", MaxKeyLen+1), "\xff\xfe", "a\nb", ".", "..", ".well-known/acme-challenge/x"} {
		if _, err := d.Insert("s", k, []byte("v"), InsertOptions{}); !errors.Is(err, ErrBadKey) {
			t.Errorf("key %q: err = %v, want ErrBadKey", k, err)
		}
	}
	if _, err := d.Insert("s", strings.Repeat("a", MaxKeyLen), []byte("v"), InsertOptions{}); err != nil {
		t.Errorf("key of exactly %d bytes: %v", MaxKeyLen, err)
	}
	if _, err := d.Insert("s", "k", nil, InsertOptions{Metadata: make([]byte, MaxMetadataLen+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("metadata over the limit: %v", err)
	}
}

func TestTTLExpiry(t *testing.T) {
	d := open(t, t.TempDir())
	now := time.Unix(1_800_000_000, 0)
	d.now = func() time.Time { return now }
	d.Declare("s", nil)
	if _, err := d.Insert("s", "k", []byte("v"), InsertOptions{TTL: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	d.Insert("s", "keep", []byte("v"), InsertOptions{})
	if _, err := d.Lookup("s", "k"); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	now = now.Add(10 * time.Second)
	if _, err := d.Lookup("s", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after expiry: %v, want ErrNotFound", err)
	}
	if p, _ := d.List("s", "", "", 0); len(p.Keys) != 1 || p.Keys[0] != "keep" {
		t.Fatalf("list after expiry = %q", p.Keys)
	}
	if _, err := d.Insert("s", "k", []byte("v2"), InsertOptions{Mode: Add}); err != nil {
		t.Fatalf("add over an expired key: %v", err)
	}
	d.Insert("s", "k2", []byte("v"), InsertOptions{TTL: time.Second})
	now = now.Add(time.Second)
	if n, err := d.Sweep(); n != 1 || err != nil {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
}

func TestListPrefixCursorLimit(t *testing.T) {
	d := open(t, t.TempDir())
	d.Declare("s", nil)
	for _, k := range []string{"a/1", "a/2", "a/3", "b/1", "a0"} {
		d.Insert("s", k, []byte(k), InsertOptions{})
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		p, err := d.List("s", "a/", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, p.Keys...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if fmt.Sprint(got) != "[a/1 a/2 a/3]" || pages != 2 {
		t.Fatalf("pages = %d, keys %q", pages, got)
	}
	if _, err := d.List("s", "", "!!notbase64", 0); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, err := d.List("s", "", "", MaxListLimit+1); err == nil {
		t.Fatal("limit over the maximum accepted")
	}
}

func TestDeclareSeedsOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	seeds := []Seed{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2"), Metadata: []byte("m")}}
	if err := d.Declare("s", seeds); err != nil {
		t.Fatal(err)
	}
	d.Insert("s", "a", []byte("guest"), InsertOptions{})
	d.Close()

	d = open(t, dir)
	seeds[1].Value = []byte("2 changed")
	if err := d.Declare("s", seeds); err != nil {
		t.Fatal(err)
	}
	if e, _ := d.Lookup("s", "a"); string(e.Value) != "guest" {
		t.Errorf("a = %q: a restart overwrote what the guest wrote", e.Value)
	}
	if e, _ := d.Lookup("s", "b"); string(e.Value) != "2 changed" || string(e.Metadata) != "m" {
		t.Errorf("b = %q %q: a changed manifest entry was not written", e.Value, e.Metadata)
	}
	infos, err := d.Stores()
	if err != nil || len(infos) != 1 || infos[0].Keys != 2 || infos[0].Bytes != int64(len("guest")+len("2 changed")+1) {
		t.Errorf("Stores = %+v, %v", infos, err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	d := open(t, t.TempDir())
	d.Declare("s", nil)
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := d.Insert("s", "k", []byte(fmt.Sprintf("<%d>", i)), InsertOptions{Mode: Append}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	e, err := d.Lookup("s", "k")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if c := bytes.Count(e.Value, []byte(fmt.Sprintf("<%d>", i))); c != 1 {
			t.Errorf("<%d> appears %d times", i, c)
		}
	}
}

// TestFullDiskKeepsEarlierValue runs an insert in a child process whose
// file size limit (RLIMIT_FSIZE) stops the database file from growing, as
// a full disk does: the insert must fail and the earlier value survive.
func TestFullDiskKeepsEarlierValue(t *testing.T) {
	if os.Getenv("KVSTORE_FULLDISK_CHILD") != "" {
		fullDiskChild()
		return
	}
	if !fullDiskSupported {
		t.Skip("needs RLIMIT_FSIZE (unix)")
	}
	dir := t.TempDir()
	d, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	d.Declare("s", nil)
	if _, err := d.Insert("s", "k", []byte("earlier"), InsertOptions{}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskKeepsEarlierValue$")
	cmd.Env = append(os.Environ(), "KVSTORE_FULLDISK_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child: %s", out)
	if !strings.Contains(string(out), "insert failed:") {
		t.Fatalf("the oversized insert did not fail in the child:\n%s", out)
	}
	d = open(t, dir)
	if e, err := d.Lookup("s", "k"); err != nil || string(e.Value) != "earlier" {
		t.Fatalf("after the failed insert: %q, %v; want the earlier value", e.Value, err)
	}
	if _, err := d.Insert("s", "k", []byte("later"), InsertOptions{}); err != nil {
		t.Fatalf("insert after the disk has room again: %v", err)
	}
}
