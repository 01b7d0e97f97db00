package handoff

import (
	"context"
	"net"
)

// dialer returns Dial, or a net.Dialer whose sockets carry Config.Mark:
// the rules of synproxy-lite let the packets of marked sockets through, so
// the Proxy's own backend connection is never taken for a client's, even
// when the backend listens on the protected port of this host.
func (p *Proxy) dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	if p.Dial != nil {
		return p.Dial
	}
	d := &net.Dialer{}
	if p.Config != nil && p.Config.Mark != 0 {
		d.Control = markControl(p.Config.Mark)
	}
	return d.DialContext
}
