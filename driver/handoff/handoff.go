package handoff

import (
	"errors"
	"strings"
	"syscall"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

var (
	// ErrNotSupported is returned on systems without TCP_REPAIR.
	ErrNotSupported = errors.New("handoff: not supported on this system")
	// ErrClosed is returned by a closed Listener or Proxy.
	ErrClosed = errors.New("handoff: closed")
	// ErrBacklog is returned by Listener.Handoff when Accept is not keeping
	// up; no socket is created.
	ErrBacklog = errors.New("handoff: accept backlog full")
	// ErrExists is returned by Materialise when a socket of the same
	// connection (the same addresses and ports) exists already: the
	// handshake was handed off before. The packet that carried it can go
	// to the kernel, which delivers it to that socket.
	ErrExists = errors.New("handoff: connection exists")
	// ErrHandshake is returned for handshake facts that cannot describe a
	// connection (mixed families, zero ports, a shift above 14).
	ErrHandshake = errors.New("handoff: invalid handshake")
)

// Handshake is what a proven handshake tells about a connection; the SYN
// proxy engine (driver/engine) hands it over as engine.Handshake (the same type).
type Handshake struct {
	// Tuple is the connection: Client is the remote end, Server the local
	// address the client connected to.
	Tuple cookie.Tuple
	// ClientISN and ServerISN are the initial sequence numbers (the
	// server's is the cookie). The first data byte of each side has ISN+1.
	ClientISN, ServerISN uint32
	// MSS is the largest segment the client accepts: the MSS the cookie
	// decoded, the client's own rounded down to the cookie table.
	MSS uint16
	// WScaleOK says window scaling was negotiated; ClientWScale is the
	// client's shift, ServerWScale ours (the shift the SYN-ACK advertised).
	WScaleOK                   bool
	ClientWScale, ServerWScale uint8
	// SACKOK says SACK was negotiated.
	SACKOK bool
	// Timestamps says the timestamp option was negotiated; TSval is the
	// client's clock as of the ACK, TSecr our clock (the SYN-ACK's TSval)
	// as the client echoes it.
	Timestamps   bool
	TSval, TSecr uint32
	// Window is the ACK's raw window field (scaled by ClientWScale when
	// window scaling was negotiated).
	Window uint16
	// Payload is data that rode on the ACK. It is copied into the socket's
	// receive queue. If the ACK itself later reaches the socket too, the
	// kernel sees that data a second time, drops the duplicate and
	// acknowledges at once.
	Payload []byte
}

// Config configures the sockets Materialise creates. A nil *Config means the
// defaults.
type Config struct {
	// Mark is the socket mark (SO_MARK) of the connection's socket; 0 sets
	// none. The nft rules of synproxy-lite let packets of sockets with
	// their mark bypass the queue ("socket mark M accept"), which is how
	// the rest of the connection reaches the socket directly.
	Mark uint32
	// Transparent sets IP_TRANSPARENT (IPV6_TRANSPARENT), so the socket can
	// use a server address that is not local (a TPROXY setup).
	Transparent bool
	// NoWindowUpdate leaves out the window update the socket otherwise
	// sends when it leaves repair mode (see the package documentation):
	// the client then learns the window only when data flows or from its
	// own zero-window probe.
	NoWindowUpdate bool
	// WindowUpdateError, if set, receives the error when the window
	// update could not be sent. The connection is returned all the same:
	// it works, the client finds the window with its zero-window probe.
	WindowUpdateError func(error)
}

// OpError is the error of one step of a handoff.
type OpError struct {
	// Op names the step, e.g. "bind 10.0.0.1:80" or "TCP_REPAIR_OPTIONS".
	Op string
	// Err is the underlying error.
	Err error
}

func (e *OpError) Error() string {
	s := "handoff: " + e.Op + ": " + e.Err.Error()
	switch {
	case errors.Is(e.Err, syscall.EACCES) && strings.HasPrefix(e.Op, "bind "):
		s += " (a port below 1024 needs CAP_NET_BIND_SERVICE)"
	case errors.Is(e.Err, syscall.EPERM) || errors.Is(e.Err, syscall.EACCES):
		s += " (TCP_REPAIR needs CAP_NET_ADMIN)"
	}
	return s
}

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

// validate checks the handshake facts Materialise relies on.
func (h *Handshake) validate() error {
	c, s := h.Tuple.Client, h.Tuple.Server
	switch {
	case !c.Addr().IsValid() || !s.Addr().IsValid():
		return errors.Join(ErrHandshake, errors.New("missing address"))
	case c.Addr().Is4() != s.Addr().Is4():
		return errors.Join(ErrHandshake, errors.New("client and server of different families"))
	case c.Port() == 0 || s.Port() == 0:
		return errors.Join(ErrHandshake, errors.New("zero port"))
	case h.WScaleOK && (h.ClientWScale > 14 || h.ServerWScale > 14):
		return errors.Join(ErrHandshake, errors.New("window scale above 14"))
	case h.MSS == 0:
		return errors.Join(ErrHandshake, errors.New("zero MSS"))
	}
	return nil
}
