package hostcall

import (
	"sort"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/secretstore"
)

// fastly_secret_store over the version's secret stores (abi/README.md,
// "fastly_secret_store"). No status message and no log line quotes a
// secret's value; names are not secret.

// secretHandles are a session's secret store and secret handle tables,
// made on first use.
type secretHandles struct {
	stores  handles[*secretstore.Store]
	secrets handles[secretstore.Secret]
}

func (s *Session) sech() *secretHandles {
	if s.secrets == nil {
		s.secrets = &secretHandles{
			stores:  newHandles[*secretstore.Store](&s.next),
			secrets: newHandles[secretstore.Secret](&s.next),
		}
	}
	return s.secrets
}

func secretStoreImpls() []impl {
	return []impl{
		bindSecretStoreOpen(func(c *call, a secretStoreOpenArgs) error {
			name := string(a.Name)
			if !secretstore.ValidName(name) {
				return statusErr(abi.Inval, "invalid secret store name %q", name)
			}
			st, ok := c.s.env.secretStores[name]
			if !ok {
				return statusErr(abi.None, "no secret store named %q", name)
			}
			return c.putU32(a.SecretStoreOut, c.s.sech().stores.add(st))
		}),
		bindSecretStoreGet(func(c *call, a secretStoreGetArgs) error {
			st, err := c.s.sech().stores.get(a.Store)
			if err != nil {
				return err
			}
			name := string(a.Key)
			if !secretstore.ValidName(name) {
				return statusErr(abi.Inval, "invalid secret name %q", name)
			}
			sec, ok := st.Get(name)
			if !ok {
				return statusErr(abi.None, "no secret %q in store %q", name, st.Name())
			}
			return c.putU32(a.SecretOut, c.s.sech().secrets.add(sec))
		}),
		bindSecretStorePlaintext(func(c *call, a secretStorePlaintextArgs) error {
			sec, err := c.s.sech().secrets.get(a.Secret)
			if err != nil {
				return err
			}
			return c.writeBuf(a.Buf, sec.Plaintext())
		}),
		bindSecretStoreFromBytes(func(c *call, a secretStoreFromBytesArgs) error {
			return c.putU32(a.SecretOut, c.s.sech().secrets.add(secretstore.New(a.Buf)))
		}),
	}
}

// SecretStoreInfo names one of a version's secret stores and counts its
// secrets (never their values).
type SecretStoreInfo struct {
	Name    string   `json:"name"`
	Secrets int      `json:"secrets"`
	Names   []string `json:"names"`
}

// SecretStoreInfo describes the env's secret stores, by name.
func (e *Env) SecretStoreInfo() []SecretStoreInfo {
	out := make([]SecretStoreInfo, 0, len(e.secretStores))
	for _, st := range e.secretStores {
		out = append(out, SecretStoreInfo{Name: st.Name(), Secrets: st.Len(), Names: st.Names()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
