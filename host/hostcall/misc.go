package hostcall

import (
	"github.com/edgehost/edgehost/abi"
)

// logEndpoint is a named log endpoint opened by fastly_log.endpoint_get.
type logEndpoint struct{ name string }

func abiImpls() []impl {
	return []impl{
		{abi.ModuleABI, "init", func(c *call) error {
			if c.u64(0) != abi.Version {
				return statusErr(abi.Error, "ABI version %d is not supported (only %d)", c.u64(0), abi.Version)
			}
			return nil
		}},
	}
}

func logImpls() []impl {
	m := abi.ModuleLog
	return []impl{
		{m, "endpoint_get", func(c *call) error {
			name, err := c.str(0)
			if err != nil {
				return err
			}
			switch {
			case name == "", name == "stdout", name == "stderr", len(name) >= 12 && name[:12] == "fst_managed_":
				return statusErr(abi.Inval, "log endpoint name %q is reserved", name)
			}
			if err := c.checkOut(c.u32(2), 4, 4); err != nil {
				return err
			}
			return c.putU32(c.u32(2), c.s.logs.add(&logEndpoint{name: name}))
		}},
		{m, "write", func(c *call) error {
			ep, err := c.s.logs.get(c.u32(0))
			if err != nil {
				return err
			}
			msg, err := c.bytes(1, 1<<20)
			if err != nil {
				return err
			}
			if err := c.checkOut(c.u32(3), 4, 4); err != nil {
				return err
			}
			c.s.logger().Info(string(msg), "log_endpoint", ep.name)
			return c.putU32(c.u32(3), uint32(len(msg)))
		}},
	}
}

// storeImpls implements fastly_dictionary and fastly_config_store: the
// same shapes over the env's stores.
func storeImpls() []impl {
	var impls []impl
	for _, m := range []struct {
		module string
		stores func(c *call) map[string]map[string]string
	}{
		{abi.ModuleDictionary, func(c *call) map[string]map[string]string { return c.s.env.dictionaries }},
		{abi.ModuleConfigStore, func(c *call) map[string]map[string]string { return c.s.env.configStores }},
	} {
		impls = append(impls,
			impl{m.module, "open", func(c *call) error {
				name, err := c.str(0)
				if err != nil {
					return err
				}
				st, ok := m.stores(c)[name]
				if !ok {
					return statusErr(abi.Badf, "no store named %q", name)
				}
				if err := c.checkOut(c.u32(2), 4, 4); err != nil {
					return err
				}
				return c.putU32(c.u32(2), c.s.stores.add(st))
			}},
			impl{m.module, "get", func(c *call) error {
				st, err := c.s.stores.get(c.u32(0))
				if err != nil {
					return err
				}
				key, err := c.str(1)
				if err != nil {
					return err
				}
				v, ok := st[key]
				if !ok {
					return errNone
				}
				return c.putBuf(c.u32(3), c.u32(4), c.u32(5), []byte(v))
			}},
		)
	}
	return impls
}
