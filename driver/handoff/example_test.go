package handoff_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// The PROXY protocol v2 header a Proxy sends its backend, and how a
// backend reads it.
func ExampleAppendProxyHeader() {
	client := netip.MustParseAddrPort("192.0.2.7:51234")
	server := netip.MustParseAddrPort("198.51.100.1:443")
	hdr := handoff.AppendProxyHeader(nil, client, server)
	fmt.Printf("%d bytes: % x\n", len(hdr), hdr[12:16])

	c, s, n, err := handoff.ParseProxyHeader(append(hdr, "GET / HTTP/1.1\r\n"...))
	fmt.Println(c, s, n, err)
	// Output:
	// 28 bytes: 21 11 00 0c
	// 192.0.2.7:51234 198.51.100.1:443 28 <nil>
}

// A Proxy bounded for an exposed service: at most 10,000 open connections
// and 50 per /24 or /48, idle ones closed after five minutes, backend dials
// given two seconds. A Handoff over a limit makes no socket and returns a
// *RefusedError; the caller drops the ACK and waits for the client's
// retransmission.
func ExampleLimits() {
	px := &handoff.Proxy{Backend: "127.0.0.1:8081", Limits: &handoff.Limits{
		MaxConns: 10000, MaxConnsPerSource: 50, SourcePrefix4: 24, SourcePrefix6: 48,
		IdleTimeout: 5 * time.Minute, DialTimeout: 2 * time.Second}}
	defer px.Close()
	fmt.Println(px.Stats().MaxConns, handoff.ErrPerSource, errors.Is(handoff.ErrPerSource, handoff.ErrRefused))
	// Output:
	// 10000 handoff: refused: per_source true
}

// A failed backend dial is counted by reason, the label of
// synproxy_lite_backend_dial_failures_total.
func ExampleDialReason() {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	noRoute := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}
	fmt.Println(handoff.DialReason(refused), handoff.DialReason(noRoute), handoff.DialReason(context.DeadlineExceeded))
	// Output: refused unreachable timeout
}
