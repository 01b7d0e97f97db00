package config_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/internal/config"
)

// A key file holds the secret as 64 hex digits and may be read by its owner
// only; the key it holds never prints.
func ExampleLoadKeyFile() {
	dir, _ := os.MkdirTemp("", "config-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "cookie.key")
	os.WriteFile(path, []byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"), 0o600)

	key, err := config.LoadKeyFile(path)
	fmt.Println(key, err)

	os.Chmod(path, 0o640)
	_, err = config.LoadKeyFile(path)
	fmt.Println(err != nil)

	ring, _ := cookie.NewRing(&cookie.RingConfig{Key: &key})
	fmt.Println(ring != nil)
	// Output:
	// cookie.Key(REDACTED) <nil>
	// true
	// true
}

// A configuration file names its services; Parse fills the defaults and
// lays the services out apart, and an error names the key and its line.
func ExampleParse() {
	c, err := config.Parse([]byte(`
workers = 1

[[services]]
name = "web"
ports = [443, 8443]
backends = ["10.0.0.2:8443", "10.0.0.3:8443"]

[[services]]
name = "ssh"
ports = [22]
backends = ["10.0.0.2:22"]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range c.Services {
		fmt.Println(s.Name, s.Tables(), s.Queue, s.Backends)
	}

	_, err = config.Parse([]byte("[[services]]\nports = [443]\nbackends = [\"::1:8443\"]\nmss = 70000\n"))
	fmt.Println(err)
	// Output:
	// web [synproxy_lite_web synproxy_lite_web_2] 100 [10.0.0.2:8443 10.0.0.3:8443]
	// ssh [synproxy_lite_ssh] 104 [10.0.0.2:22]
	// config: line 3: services[0].backends = "::1:8443": an IPv6 address needs brackets: want HOST:PORT with a port 1-65535, an IPv6 address in brackets ([2001:db8::1]:8443)
	// config: line 4: services[0].mss = 70000: want -1 (no MSS option), 0 (1460) or 1-65535
}

// A service's protection policy: Parse fills the defaults of the keys it
// leaves out (the flags' defaults), Lists reads the lists, and a policy run
// could not use is refused naming its key.
func ExampleService_EnginePolicy() {
	c, err := config.Parse([]byte(`
[[services]]
name = "web"
ports = [443]
backends = ["10.0.0.2:8443"]

[services.policy]
deny = ["192.0.2.0/24", "2001:db8::1"]
syn_rate = 20
mode = "on-demand"
on_demand = { rate = 500 }
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p := c.Services[0].EnginePolicy()
	fmt.Println(p.Mode, p.SYNRate, p.ReflectRate, p.EngageRate, p.Hold, p.Prefix4, p.Prefix6)
	l, _ := c.Lists(0)
	fmt.Println(l.Allow, l.Deny)

	_, err = config.Parse([]byte("[[services]]\nports = [443]\nbackends = [\"10.0.0.2:8443\"]\n" +
		"driver = \"afxdp\"\ninterface = \"eth0\"\npolicy = { proven_clients = { enabled = true } }\n"))
	fmt.Println(err)
	// Output:
	// on-demand 20 1000 500 10s 32 64
	// [] [192.0.2.0/24 2001:db8::1/128]
	// <nil>
}
