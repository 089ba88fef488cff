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
			return c.putU32(c.u32(2), c.s.logHandle(name))
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
			if err := c.s.checkLog(ep.name, len(msg)); err != nil {
				return err
			}
			c.s.logger().Info(string(msg), "log_endpoint", ep.name)
			return c.putU32(c.u32(3), uint32(len(msg)))
		}},
	}
}

// storeImpls implements fastly_dictionary and fastly_config_store: the
// same shapes over the env's stores. Config stores and dictionaries are
// one namespace (as in Viceroy): either open finds a store declared in
// either section, its own section first.
func storeImpls() []impl {
	var impls []impl
	for _, m := range []struct {
		module string
		first  bool // look in the config stores first
	}{
		{abi.ModuleDictionary, false},
		{abi.ModuleConfigStore, true},
	} {
		impls = append(impls,
			impl{m.module, "open", func(c *call) error {
				name, err := c.str(0)
				if err != nil {
					return err
				}
				sections := [2]map[string]map[string]string{c.s.env.dictionaries, c.s.env.configStores}
				if m.first {
					sections[0], sections[1] = sections[1], sections[0]
				}
				st, ok := sections[0][name]
				if !ok {
					st, ok = sections[1][name]
				}
				if !ok {
					return statusErr(abi.Badf, "no config store or dictionary named %q", name)
				}
				if err := c.checkOut(c.u32(2), 4, 4); err != nil {
					return err
				}
				return c.putU32(c.u32(2), c.s.storeHandle(m.module+"\x00"+name, st))
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
