package nft

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLoopbackFallback is what Install returns (wrapped, with the reason and
// the remedy) when FailOpen would send bypassed connections to a loopback
// Fallback that the kernel drops them on the way to.
var ErrLoopbackFallback = errors.New("nft: fail-open to a loopback backend")

// checkFallback refuses a loopback Fallback that bypassed packets cannot
// reach. They arrive on another interface, and the kernel drops a packet
// from another interface to 127.0.0.0/8 as martian unless route_localnet is
// set (on "all" or on the interface), and to ::1 always. The daemon does not
// set route_localnet itself: it makes every service listening on loopback
// reachable from the neighbours of that interface, a choice for the
// operator.
func (c *Config) checkFallback() error {
	if !c.failOpen() || !c.Fallback.IsValid() {
		return nil
	}
	addr := c.Fallback.Addr().Unmap()
	if !addr.IsLoopback() {
		return nil
	}
	if addr.Is6() {
		return fmt.Errorf("%w: %v cannot be reached: IPv6 never routes packets from another interface to loopback; "+
			"give the backend a routable address", ErrLoopbackFallback, c.Fallback)
	}
	on, err := c.routeLocalnet()
	if err != nil {
		return fmt.Errorf("%w: reading route_localnet: %v", ErrLoopbackFallback, err)
	}
	if !on {
		return fmt.Errorf("%w: %v is reachable from other interfaces only with net.ipv4.conf.all.route_localnet=1 "+
			"(or route_localnet on the interfaces clients arrive on; it also opens every service listening on loopback to the neighbours; the daemon leaves that to the operator); "+
			"set it, or give the backend a routable address", ErrLoopbackFallback, c.Fallback)
	}
	return nil
}

// routeLocalnet reports whether route_localnet is set on "all" or on any
// interface but lo of the network namespace the rules go to (the kernel
// looks at the interface a packet arrives on).
func (c *Config) routeLocalnet() (bool, error) {
	var on bool
	err := c.inNetNS(func() error {
		files, err := filepath.Glob("/proc/sys/net/ipv4/conf/*/route_localnet")
		if err != nil {
			return err
		}
		for _, f := range files {
			switch filepath.Base(filepath.Dir(f)) {
			case "default": // only for interfaces made later
				continue
			case "lo": // what arrives on lo needs none
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				continue // an interface that went away
			}
			if strings.TrimSpace(string(b)) != "0" {
				on = true
			}
		}
		if len(files) == 0 {
			return errors.New("no /proc/sys/net/ipv4/conf/*/route_localnet")
		}
		return nil
	})
	return on, err
}

// inNetNS runs f in the network namespace of c.NetNS (the current one when
// it is zero), on a locked thread: /proc/sys/net shows the namespace of
// the thread that opens it.
func (c *Config) inNetNS(f func() error) error {
	if c.NetNS == 0 {
		return f()
	}
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked, and so ends with the goroutine, when
		// it cannot go back to its own namespace.
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err}
			return
		}
		defer self.Close()
		if err := unix.Setns(c.NetNS, unix.CLONE_NEWNET); err != nil {
			done <- result{err}
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{ferr}
			return
		}
		runtime.UnlockOSThread()
		done <- result{ferr}
	}()
	return (<-done).err
}
