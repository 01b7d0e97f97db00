package handoff_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
)

const transferSize = 10 << 20

// tcpInfo is the part of struct tcp_info the tests look at.
type tcpInfo struct {
	state          uint8
	ts, sack, ws   bool
	sndWS, rcvWS   uint8
	sndMSS, rcvMSS uint32
	retrans        uint32
}

func infoOf(t *testing.T, c *net.TCPConn) tcpInfo {
	t.Helper()
	var b [256]byte
	l := uint32(len(b))
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var errno unix.Errno
	rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
			uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&l)), 0)
	})
	if errno != 0 {
		t.Fatal(errno)
	}
	return tcpInfo{
		state: b[0],
		// TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE
		ts: b[5]&1 != 0, sack: b[5]&2 != 0, ws: b[5]&4 != 0,
		sndWS: b[6] & 0xf, rcvWS: b[6] >> 4,
		sndMSS: binary.NativeEndian.Uint32(b[16:]), rcvMSS: binary.NativeEndian.Uint32(b[20:]),
		retrans: binary.NativeEndian.Uint32(b[100:]), // tcpi_total_retrans
	}
}

// stream is a reproducible pseudo-random byte stream.
func stream(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1})
	r.Read(b)
	return b
}

// exchange sends out on c and reads everything the peer sends until EOF,
// returning the SHA-256 of what it read.
func exchange(c *net.TCPConn, out []byte) (sum [32]byte, n int64, err error) {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(out)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, err = io.Copy(h, c)
	if e := <-werr; err == nil {
		err = e
	}
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}

type clientOpts struct {
	name               string
	noTS, noSACK, noWS bool
}

var clientMatrix = []clientOpts{
	{name: "all-options"},
	{name: "no-timestamps", noTS: true},
	{name: "no-sack", noSACK: true},
	{name: "no-wscale", noWS: true},
	{name: "no-options", noTS: true, noSACK: true, noWS: true},
}

func (o clientOpts) apply(t *testing.T, ns *netlab.NS) {
	t.Helper()
	for key, off := range map[string]bool{"net.ipv4.tcp_timestamps": o.noTS, "net.ipv4.tcp_sack": o.noSACK, "net.ipv4.tcp_window_scaling": o.noWS} {
		v := "1"
		if off {
			v = "0"
		}
		if err := ns.SetSysctl(key, v); err != nil {
			t.Fatal(err)
		}
	}
}

// kernelHandshake connects a real kernel client in the client namespace to
// the server port, plays the SYN proxy with plan, materialises the
// connection with cfg and returns both ends.
func kernelHandshake(t *testing.T, n *testNet, server netip.Addr, plan synAckPlan, cfg *handoff.Config) (client, srv *net.TCPConn, h handoff.Handshake) {
	t.Helper()
	return kernelHandshakeFrom(t, n, server, 0, plan, cfg)
}

// kernelHandshakeFrom is kernelHandshake with the client bound to
// localPort (0: an ephemeral port).
func kernelHandshakeFrom(t *testing.T, n *testNet, server netip.Addr, localPort uint16, plan synAckPlan, cfg *handoff.Config) (client, srv *net.TCPConn, h handoff.Handshake) {
	t.Helper()
	tp := openTap(t, n.srv, "veth0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type dialed struct {
		c   net.Conn
		err error
	}
	dch := make(chan dialed, 1)
	go func() {
		var c net.Conn
		err := n.cli.Do(func() (err error) {
			var d net.Dialer
			if localPort != 0 {
				d.LocalAddr = &net.TCPAddr{Port: int(localPort)}
			}
			c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(server, port).String())
			return err
		})
		dch <- dialed{c, err}
	}()
	syn_, synack, err := answerSYN(tp, n.srv, plan)
	if err != nil {
		t.Fatal(err)
	}
	ack_, err := tp.next(5*time.Second, func(s seg) bool {
		return s.src == syn_.src && s.flags&(syn|ack|rst) == ack && s.ack == plan.isn+1
	})
	if err != nil {
		t.Fatalf("waiting for the handshake ACK: %v", err)
	}
	h = handshakeOf(syn_, synack, ack_)
	if err := n.srv.Do(func() (err error) { srv, err = handoff.Materialise(&h, cfg); return }); err != nil {
		t.Fatalf("Materialise(%+v): %v", h, err)
	}
	t.Cleanup(func() { srv.Close() })
	d := <-dch
	if d.err != nil {
		t.Fatalf("client dial: %v", d.err)
	}
	client = d.c.(*net.TCPConn)
	t.Cleanup(func() { client.Close() })
	return client, srv, h
}

// TestKernelClient: a kernel client connects, the handshake is answered by
// the responder, and the materialised socket carries the connection: the
// server speaks first, then 10 MB go each way, checksummed, for every
// combination of the client's options in the matrix, over IPv4 and IPv6,
// with a listener on the same port all along.
func TestKernelClient(t *testing.T) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		for _, o := range clientMatrix {
			t.Run(fam+"/"+o.name, func(t *testing.T) {
				n := newTestNet(t)
				o.apply(t, n.cli)
				server := n.srv4
				if fam == "ipv6" {
					server = n.srv6
				}
				// A listener on the protected port, as a service may have:
				// the repaired socket binds beside it, and it never sees
				// the connection.
				ln, err := n.srv.Listen("tcp", netip.AddrPortFrom(server, port).String())
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				stray := make(chan net.Conn, 1)
				go func() {
					if c, err := ln.Accept(); err == nil {
						stray <- c
					}
				}()

				plan := synAckPlan{isn: rand.Uint32(), mss: 1460, ws: 7, win: 0, tsAhead: 3600_007}
				client, srv, h := kernelHandshake(t, n, server, plan, &handoff.Config{Mark: mark})
				deadline := time.Now().Add(60 * time.Second)
				client.SetDeadline(deadline)
				srv.SetDeadline(deadline)

				// Addresses as the two ends see them.
				if got := srv.RemoteAddr().(*net.TCPAddr).AddrPort(); got != client.LocalAddr().(*net.TCPAddr).AddrPort() {
					t.Errorf("server sees client %v, client is %v", got, client.LocalAddr())
				}
				if got := srv.LocalAddr().(*net.TCPAddr).AddrPort(); got != h.Tuple.Server {
					t.Errorf("server local address %v, want %v", got, h.Tuple.Server)
				}

				// The server speaks first.
				greeting := []byte("220 synproxy-lite handoff ready\r\n")
				if _, err := srv.Write(greeting); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(greeting))
				if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, greeting) {
					t.Fatalf("client read greeting %q, %v", got, err)
				}

				// Options as negotiated, seen from both ends.
				ci, si := infoOf(t, client), infoOf(t, srv)
				if si.state != 1 /* TCP_ESTABLISHED */ {
					t.Errorf("server socket state %d", si.state)
				}
				if ci.ts != !o.noTS || si.ts != ci.ts || ci.sack != !o.noSACK || si.sack != ci.sack || ci.ws != !o.noWS || (si.ws != ci.ws && !o.noWS) {
					t.Errorf("options: client ts/sack/ws %v/%v/%v, server %v/%v/%v, want %v/%v/%v",
						ci.ts, ci.sack, ci.ws, si.ts, si.sack, si.ws, !o.noTS, !o.noSACK, !o.noWS)
				}
				// Without window scaling the server socket runs with both
				// shifts 0 (TCP_INFO still shows the option: repair sets it
				// to clear the shift connect had chosen).
				if ci.sndWS != si.rcvWS || ci.rcvWS != si.sndWS || (!o.noWS && si.rcvWS != 7) {
					t.Errorf("window scale: client snd/rcv %d/%d, server snd/rcv %d/%d", ci.sndWS, ci.rcvWS, si.sndWS, si.rcvWS)
				}

				// 10 MB each way, at once.
				up, down := stream(1, transferSize), stream(2, transferSize)
				type res struct {
					sum [32]byte
					n   int64
					err error
				}
				sres := make(chan res, 1)
				go func() {
					s, n, err := exchange(srv, down)
					sres <- res{s, n, err}
				}()
				csum, cn, cerr := exchange(client, up)
				sr := <-sres
				if cerr != nil || sr.err != nil {
					t.Fatalf("transfer: client %v, server %v", cerr, sr.err)
				}
				if cn != transferSize || csum != sha256.Sum256(down) {
					t.Errorf("client received %d bytes, checksum match %v", cn, csum == sha256.Sum256(down))
				}
				if sr.n != transferSize || sr.sum != sha256.Sum256(up) {
					t.Errorf("server received %d bytes, checksum match %v", sr.n, sr.sum == sha256.Sum256(up))
				}
				si = infoOf(t, srv)
				t.Logf("server socket: snd_mss %d rcv_mss %d wscale %d/%d retransmits %d; client retransmits %d",
					si.sndMSS, si.rcvMSS, si.sndWS, si.rcvWS, si.retrans, infoOf(t, client).retrans)
				// No segment of the server failed the client's PAWS check:
				// the repaired socket's timestamp clock is not behind the
				// SYN-ACK's TSval (which the plan puts an hour ahead).
				if paws := netstat(t, n.cli, "PAWSEstab"); paws != 0 {
					t.Errorf("client rejected %d segments by PAWS", paws)
				}
				select {
				case c := <-stray:
					c.Close()
					t.Error("the listener on the port accepted a connection")
				default:
				}
			})
		}
	}
}
