package guestsdk

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestParseURIMatchesURLParse checks that parseURI returns what url.Parse
// returns, for URIs its fast path takes and for those it leaves to
// url.Parse.
func TestParseURIMatchesURLParse(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		fast bool
	}{
		{"http://example.com/", true},
		{"http://example.com", true},
		{"https://example.com/a/b.txt", true},
		{"http://127.0.0.1:7676/bench", true},
		{"http://Example.COM/Path", true},
		{"http://example.com/p?x=1&y=2", true},
		{"http://example.com/p?", true},
		{"http://example.com?q", true},
		{"http://example.com/a;b=c/d:e@f~g$&+,", true},
		{"http://example.com/p?a=b/c?d:@!$'()*+,;", true},
		{"http://example.com//double//slash", true},
		{"http://example.com/%41", true},
		{"http://example.com/a b", true},
		{"http://example.com/p#frag", false},
		{"http://example.com/p?x=%20", true},
		{"http://user@example.com/", false},
		{"http://[::1]:80/", false},
		{"http://example.com:/", true},
		{"http://example.com/a!b", true},
		{"http://:80/", false},
		{"http://example.com:8x/", false},
		{"http://a:1:2/", false},
		{"HTTP://example.com/", false},
		{"ftp://example.com/", false},
		{"/relative", false},
		{"", false},
		{"http://", false},
		{"http://example.com/ü", true},
		{"http://example.com/p?ü", true},
		{"http://ex_ample.com/", false},
		{"http://0$", false},
		{"http://a.b:1$/", false},
		{"http://example.com/p?a\x7f", false},
		{"http://example.com/caf%C3%A9/x", true},
		{"http://example.com/caf%c3%a9", true},
		{"http://example.com/a%2Fb", true},
		{"http://example.com/a%2fb", true},
		{"http://example.com/100%25", true},
		{"http://example.com/a%20b%3F?q=a%20b+c&d=%zz", true},
		{"http://example.com/p?a b&c=\"d\"", true},
		{"http://example.com/p?a?b?", true},
		{"http://example.com/p??", true},
		{"http://example.com/[x]", true},
		{"http://example.com/%zz", false},
		{"http://example.com/%4", false},
		{"http://example.com/%", false},
		{"http://example.com/a\x01b", false},
		{"http://example.com/a\x7f", false},
		{"http://example.com/a#b", false},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			if _, ok := parseSimpleURI(tc.uri); ok != tc.fast {
				t.Errorf("fast path taken: %v, want %v", ok, tc.fast)
			}
			got, gotErr := parseURI(tc.uri)
			want, wantErr := url.Parse(tc.uri)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("error %v, url.Parse's %v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, url.Parse gives %#v", got, want)
			}
			if got != nil && got.String() != want.String() {
				t.Errorf("String() %q, url.Parse's %q", got.String(), want.String())
			}
		})
	}
}

// FuzzParseURI checks parseURI against url.Parse on arbitrary input, and
// on the input as the path and query of an http URI (where the fast path
// decodes escapes).
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"http://example.com/p?x=1", "https://a.b:8080/c/d?", "http://h/%zz",
		"a%20b/caf%C3%A9?q=%zz+1", "%2f%2F%41?", "a b!'()*[]?ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, uri := range []string{in, "http://example.com/" + in} {
			got, gotErr := parseURI(uri)
			want, wantErr := url.Parse(uri)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%q: error %v, url.Parse's %v", uri, gotErr, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: got %#v, url.Parse gives %#v", uri, got, want)
			}
		}
	})
}

// TestByteClasses checks byteClasses against the definitions of its bits.
func TestByteClasses(t *testing.T) {
	isAlnum := func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }
	in := func(c byte, set string) bool { return c < 0x80 && strings.IndexByte(set, c) >= 0 }
	for i := 0; i < 256; i++ {
		c := byte(i)
		for _, bit := range []struct {
			name string
			mask byte
			want bool
		}{
			{"token", classToken, isAlnum(c) || in(c, "!#$%&'*+-.^_`|~")},
			{"host", classHost, isAlnum(c) || in(c, ".-")},
			{"path", classPath, isAlnum(c) || in(c, "/-._~$&+,;=:@")},
			{"query", classQuery, c >= ' ' && c != 0x7f && c != '#'},
		} {
			if got := byteClasses[c]&bit.mask != 0; got != bit.want {
				t.Errorf("byte %#x: %s class %v, want %v", c, bit.name, got, bit.want)
			}
		}
	}
}
