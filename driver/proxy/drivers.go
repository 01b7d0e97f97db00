package proxy

import (
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/afpacket"
	"github.com/synproxy-lite/synproxy-lite/driver/afxdp"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/nfqueue"
)

// Driver is a packet I/O driver a Server can run on, chosen by name
// (ServerConfig.Driver, the daemon's --driver). A new driver is one package
// and one entry of the table Drivers returns.
type Driver struct {
	// Name selects the driver.
	Name string
	// Drop says the driver taps packets below netfilter: the nft rules
	// drop the port's handshake packets (so that the kernel does not
	// answer them too) instead of queueing them to the driver.
	Drop bool
	// NeedsInterface says the driver receives on one interface,
	// ServerConfig.Interface.
	NeedsInterface bool
	// FailOpen says the driver can let packets bypass it while the
	// process is gone (ServerConfig.FailOpen). A driver that taps packets
	// cannot: the drop rules stay when it is gone.
	FailOpen bool
	// Proven says the driver serves proven clients first
	// (ServerConfig.ProvenClients): nfqueue through a queue of their own
	// that nft fills; a driver that taps below netfilter through a ring of
	// its own, learning each source from the Server as its connection is
	// handed over (the driver's Prove method).
	Proven bool

	open func(c *ServerConfig) (driver.Driver, error)
}

var drivers = []Driver{
	{Name: "nfqueue", FailOpen: true, Proven: true, open: func(c *ServerConfig) (driver.Driver, error) {
		d, err := nfqueue.Open(&nfqueue.Config{QueueNum: c.Queue, Queues: c.Workers, FailOpen: c.FailOpen})
		if err != nil {
			return nil, err
		}
		return d, nil
	}},
	// afpacket serves proven clients on a socket and ring of their own,
	// outside the workers' fanout group (one more worker).
	{Name: "afpacket", Drop: true, NeedsInterface: true, Proven: true, open: func(c *ServerConfig) (driver.Driver, error) {
		ac := &afpacket.Config{Interface: c.Interface, Port: c.Port, Workers: c.Workers, Logger: c.Logger}
		if p := c.ProvenClients; p != nil {
			ac.Proven = &driver.Proven{Size: p.Size, Timeout: p.Timeout}
		}
		d, err := afpacket.Open(ac)
		if err != nil {
			return nil, err
		}
		return d, nil
	}},
	// afxdp serves every receive queue of the interface, one worker each
	// (an XDP program cannot leave a queue to no one: it would pass the
	// queue's handshakes to the stack, where the drop rules end them).
	// Its program applies the allow and deny lists and the on-demand mode
	// (see policyDriver), and serves proven clients first: their SYNs and
	// handshake ACKs go to a second socket per queue, whose ring the flood
	// does not fill. In monitor mode it attaches no program and taps
	// copies as afpacket does: an XDP program either passes a packet to
	// the stack or redirects it to a socket, and monitoring needs both.
	{Name: "afxdp", Drop: true, NeedsInterface: true, Proven: true, open: func(c *ServerConfig) (driver.Driver, error) {
		if c.Policy != nil && c.Policy.Mode == engine.ModeMonitor {
			if c.Logger != nil {
				c.Logger.Info("afxdp: monitor mode taps copies on a packet socket; no XDP program attached", "interface", c.Interface)
			}
			return afpacket.Open(&afpacket.Config{Interface: c.Interface, Port: c.Port, Workers: c.Workers, Logger: c.Logger})
		}
		xc := &afxdp.Config{Interface: c.Interface, Port: c.Port, Logger: c.Logger,
			OnDemand: c.Policy != nil && c.Policy.Mode == engine.ModeOnDemand}
		if c.Lists != nil {
			xc.Allow, xc.Deny = c.Lists.Allow, c.Lists.Deny
		}
		if p := c.ProvenClients; p != nil {
			xc.Proven = &driver.Proven{Size: p.Size, Timeout: p.Timeout}
		}
		d, err := afxdp.Open(xc)
		if err != nil {
			return nil, err
		}
		return d, nil
	}},
}

// Drivers returns the drivers a Server can run on, the default first.
func Drivers() []Driver { return append([]Driver(nil), drivers...) }

// LookupDriver returns the driver called name.
func LookupDriver(name string) (Driver, bool) {
	for _, d := range drivers {
		if d.Name == name {
			return d, true
		}
	}
	return Driver{}, false
}
