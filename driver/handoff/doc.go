// Package handoff turns a client whose handshake a SYN proxy has proven
// into a real kernel TCP socket, and serves it: as a net.Listener for Go
// services that embed the proxy, or spliced to a backend (with an optional
// PROXY protocol v2 header).
//
// # Materialising a connection with TCP_REPAIR
//
// The SYN proxy answered the client's SYN itself and checked the cookie of
// its ACK, so the kernel holds no state for the connection. Materialise
// creates it in the state the handshake left it in, with the socket in
// repair mode (the sequence CRIU uses to restore connections):
//
//  1. socket, TCP_REPAIR=1 (needs CAP_NET_ADMIN); SO_MARK, IPV6_V6ONLY,
//     IP_TRANSPARENT as configured; bind to the server address and port.
//     Repair mode forces address reuse, so the bind succeeds beside a
//     listener on the same port.
//  2. TCP_REPAIR_QUEUE=TCP_SEND_QUEUE, TCP_QUEUE_SEQ=ServerISN+1;
//     TCP_REPAIR_QUEUE=TCP_RECV_QUEUE, TCP_QUEUE_SEQ=ClientISN+1.
//  3. connect to the client: in repair mode this sends nothing, the socket
//     is ESTABLISHED and in the kernel's established-socket table.
//  4. TCP_REPAIR_OPTIONS: the MSS, the window-scale shifts (client's and
//     ours; both 0 without window scaling, because connect picked a shift
//     of its own), SACK-permitted and timestamps as negotiated.
//  5. TCP_TIMESTAMP: the socket's timestamp clock is set to the kernel's
//     clock, or to the SYN-ACK's TSval (echoed by the client) when that is
//     ahead, so no segment of ours fails the client's PAWS check. The value
//     is kept even: an odd one asks for microsecond timestamps.
//  6. Payload that rode on the ACK is written with the receive queue
//     selected, which puts it in the socket's receive queue.
//  7. TCP_REPAIR_WINDOW: the client's window from its ACK (scaled), our
//     receive window as connect chose it, bounded by what our shift can
//     announce.
//  8. TCP_REPAIR=TCP_REPAIR_OFF_NO_WP, then a window update: an ACK
//     (seq ServerISN+1, ack past the payload, our window, timestamps) sent
//     from a raw socket, because a SYN proxy's SYN-ACK announces a zero
//     window and the kernel's own window probe on leaving repair mode has
//     a sequence number below the client's window, which the client
//     discards. Without the update a client that sends first waits for its
//     zero-window probe timer. The raw socket is opened before step 1, so
//     a missing CAP_NET_RAW fails early; a failed send is not fatal
//     (Config.WindowUpdateError).
//
// # Later packets
//
// The socket is an ordinary established socket: every later segment of the
// connection is delivered to it by the kernel's socket lookup, as long as
// the packet filter lets it through. synproxy-lite's rules accept packets
// of sockets carrying its mark (Config.Mark, "socket mark M accept") ahead
// of the rule that sends the port's other packets to the proxy. The
// handshake ACK may be given to the kernel after Materialise returns: it
// then reaches the socket, whose state already covers it (a payload it
// carries is a duplicate the kernel drops and acknowledges at once). A
// second Materialise of the same connection (the ACK and the client's
// first data segment both pass the cookie check) fails with ErrExists.
//
// # Limits
//
// A client that completes handshakes costs a Proxy two sockets, two
// pipes and three goroutines each. Proxy.Limits bounds the open
// connections (in all, by default from the descriptor limit, and per
// source prefix, in a fixed table), the backend dials in flight and their
// timeout, and sets an idle timeout, keepalive and TCP_USER_TIMEOUT on
// both sockets. A Handoff over a limit makes no socket and returns a
// *RefusedError wrapping ErrRefused: the caller drops the ACK, and the
// client's retransmission gets in once there is room.
//
// docs/handoff.md has the reasoning, the failure modes and the tests.
package handoff
