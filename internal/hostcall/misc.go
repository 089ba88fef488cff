package hostcall

import (
	"github.com/edgehost/edgehost/abi"
)

// logEndpoint is a named log endpoint opened by fastly_log.endpoint_get.
type logEndpoint struct{ name string }

func abiImpls() []impl {
	return []impl{
		bindABIInit(func(c *call, a abiInitArgs) error {
			if a.ABIVersion != abi.Version {
				return statusErr(abi.Error, "ABI version %d is not supported (only %d)", a.ABIVersion, abi.Version)
			}
			return nil
		}),
	}
}

func logImpls() []impl {
	return []impl{
		bindLogEndpointGet(func(c *call, a logEndpointGetArgs) error {
			name := string(a.Name)
			switch {
			case name == "", name == "stdout", name == "stderr", len(name) >= 12 && name[:12] == "fst_managed_":
				return statusErr(abi.Inval, "log endpoint name %q is reserved", name)
			}
			return c.putU32(a.EndpointOut, c.s.logHandle(name))
		}),
		bindLogWrite(func(c *call, a logWriteArgs) error {
			ep, err := c.s.logs.get(a.H)
			if err != nil {
				return err
			}
			if err := c.s.checkLog(ep.name, len(a.Msg)); err != nil {
				return err
			}
			c.s.logger().Info(string(a.Msg), "log_endpoint", ep.name)
			return c.putU32(a.NwrittenOut, uint32(len(a.Msg)))
		}),
	}
}

// storeImpls implements fastly_dictionary and fastly_config_store: the
// same shapes over the env's stores. Config stores and dictionaries are
// one namespace (as in Viceroy): either open finds a store declared in
// either section, its own section first.
func storeImpls() []impl {
	open := func(module string, configFirst bool) func(c *call, name []byte, out uint32) error {
		return func(c *call, name []byte, out uint32) error {
			sections := [2]map[string]map[string]string{c.s.env.dictionaries, c.s.env.configStores}
			if configFirst {
				sections[0], sections[1] = sections[1], sections[0]
			}
			st, ok := sections[0][string(name)]
			if !ok {
				st, ok = sections[1][string(name)]
			}
			if !ok {
				return statusErr(abi.Badf, "no config store or dictionary named %q", name)
			}
			return c.putU32(out, c.s.storeHandle(module+"\x00"+string(name), st))
		}
	}
	dictOpen, storeOpen := open(abi.ModuleDictionary, false), open(abi.ModuleConfigStore, true)
	get := func(c *call, a dictionaryGetArgs) error {
		st, err := c.s.stores.get(a.H)
		if err != nil {
			return err
		}
		v, ok := st[string(a.Key)]
		if !ok {
			return errNone
		}
		return c.writeBuf(a.Value, []byte(v))
	}
	return []impl{
		bindDictionaryOpen(func(c *call, a dictionaryOpenArgs) error { return dictOpen(c, a.Name, a.DictionaryOut) }),
		bindDictionaryGet(get),
		bindConfigStoreOpen(func(c *call, a configStoreOpenArgs) error { return storeOpen(c, a.Name, a.ConfigStoreOut) }),
		bindConfigStoreGet(get),
	}
}
