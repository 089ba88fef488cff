package admin_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestAuthorizationForms: the scheme is case-insensitive and may be
// followed by several spaces (RFC 9110, sections 11.1 and 11.3); the token
// must be exactly the host's, with no whitespace in or after it and no
// other padding.
func TestAuthorizationForms(t *testing.T) {
	const token = "s3cret-token"
	h := startHost(t, t.TempDir(), hostOpts{token: token})
	tests := []struct {
		name, header string
		status       int // of POST /v1/modules/9/activate: 404 once authorised (no version 9)
	}{
		{"Bearer", "Bearer " + token, 404},
		{"lower-case scheme", "bearer " + token, 404},
		{"upper-case scheme", "BEARER " + token, 404},
		{"several spaces after the scheme", "Bearer   " + token, 404},
		{"trailing spaces (net/http strips them from the field)", "Bearer " + token + "   ", 404},
		{"no header", "", 401},
		{"scheme only", "Bearer", 401},
		{"scheme and spaces", "Bearer    ", 401},
		{"another scheme", "Basic " + token, 401},
		{"no space", "Bearer" + token, 401},
		{"tab after the scheme", "Bearer\t" + token, 401},
		{"tab before the token", "Bearer \t" + token, 401},
		{"space inside the token", "Bearer s3cret token", 401},
		{"two tokens", "Bearer " + token + " " + token, 401},
		{"token with a trailing tab", "Bearer " + token + "\tx", 401},
		{"wrong token", "Bearer s3cret-tokeN", 403},
		{"token prefix", "Bearer " + token[:len(token)-1], 403},
		{"token with more", "Bearer " + token + "x", 403},
		{"token in another case", "Bearer " + strings.ToUpper(token), 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, h.adminURL+"/v1/modules/9/activate", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.header != "" {
				req.Header["Authorization"] = []string{tc.header}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("Authorization %q: %d, want %d", tc.header, resp.StatusCode, tc.status)
			}
		})
	}
}
