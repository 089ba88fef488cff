package secretstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const value = "hunter2-very-secret"
	s := New([]byte(value))
	st := NewStore("st", map[string]Secret{"k": s})
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("x", "secret", s, "struct", struct{ S Secret }{s})
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "secret", s)
	j, _ := json.Marshal(map[string]any{"s": s, "list": []Secret{s}})
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %d", s, s, s, s, s, s, s),
		fmt.Sprintf("%v", struct{ S Secret }{s}), fmt.Sprintf("%+v", st),
		fmt.Errorf("wrapped: %v", s).Error(), errors.New(fmt.Sprint(s)).Error(),
		string(j), logs.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, value) || strings.Contains(o, fmt.Sprintf("%x", value)) {
			t.Errorf("the secret value appears in %q", o)
		}
	}
	if got, ok := st.Get("k"); !ok || string(got.Plaintext()) != value {
		t.Errorf("Get = %q, %v", got.Plaintext(), ok)
	}
}
