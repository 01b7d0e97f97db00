package handoff_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// The test network: a client and a server namespace on one veth pair,
// inside the package's share of the address plan (10.99.1.0/24 and
// fd00:99:1::/64). In the server namespace an nft rule keeps the port's
// packets from the kernel's TCP stack unless they belong to a socket that
// carries the handoff mark, which is what synproxy-lite's own rules do
// (there, "queue" instead of "drop"); a test-only responder, reading the
// veth with AF_PACKET (which sees packets before netfilter), plays the SYN
// proxy: it answers the SYN with a SYN-ACK of its own from a raw socket and
// reports the client's ACK.

const (
	port = 8080
	mark = 0x53504c
)

var (
	net4 = netip.MustParsePrefix("10.99.1.0/24")
	net6 = netip.MustParsePrefix("fd00:99:1::/64")
)

type testNet struct {
	t        *testing.T
	cli, srv *netlab.NS
	cli4     netip.Addr
	srv4     netip.Addr
	cli6     netip.Addr
	srv6     netip.Addr
}

func needRoot(t *testing.T) {
	t.Helper()
	netlabtest.Need(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("SKIPPED LOUDLY: nft is not installed (scripts/test-deps.sh installs nftables)")
	}
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	needRoot(t)
	p := netlabtest.NewPair(t, "splh", net4, net6)
	n := &testNet{t: t, cli: p.A, srv: p.B, cli4: p.A4, srv4: p.B4, cli6: p.A6, srv6: p.B6}
	n.nft(n.srv, fmt.Sprintf(`table inet splh {
	chain pre {
		type filter hook prerouting priority raw;
		tcp dport %d socket mark 0x%x accept
		tcp dport %d drop
	}
}`, port, mark, port))
	return n
}

// nft loads a ruleset into the namespace.
func (n *testNet) nft(ns *netlab.NS, rules string) {
	n.t.Helper()
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := ns.Run(cmd); err != nil {
		n.t.Fatalf("nft in %s: %v\n%s", ns.Name(), err, out.String())
	}
}

// seg is a TCP segment, parsed or to be built.
type seg struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    uint8
	win      uint16
	mss      uint16 // 0: no MSS option
	ws       int    // -1: no window-scale option
	sackOK   bool
	ts       bool
	tsval    uint32
	tsecr    uint32
	payload  []byte
}

const (
	fin = 0x01
	syn = 0x02
	rst = 0x04
	psh = 0x08
	ack = 0x10
)

// parse reads an IPv4 or IPv6 packet carrying TCP.
func parse(b []byte) (s seg, ok bool) {
	var l4 []byte
	var src, dst netip.Addr
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		ihl := int(b[0]&0xf) * 4
		tot := int(binary.BigEndian.Uint16(b[2:]))
		if b[9] != unix.IPPROTO_TCP || ihl < 20 || tot > len(b) || tot < ihl {
			return s, false
		}
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:tot]
	case len(b) >= 40 && b[0]>>4 == 6:
		pl := int(binary.BigEndian.Uint16(b[4:]))
		if b[6] != unix.IPPROTO_TCP || 40+pl > len(b) {
			return s, false
		}
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40 : 40+pl]
	default:
		return s, false
	}
	if len(l4) < 20 {
		return s, false
	}
	off := int(l4[12]>>4) * 4
	if off < 20 || off > len(l4) {
		return s, false
	}
	s = seg{
		src:   netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:])),
		dst:   netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:])),
		seq:   binary.BigEndian.Uint32(l4[4:]),
		ack:   binary.BigEndian.Uint32(l4[8:]),
		flags: l4[13],
		win:   binary.BigEndian.Uint16(l4[14:]),
		ws:    -1,
	}
	s.payload = append([]byte(nil), l4[off:]...)
	for o := l4[20:off]; len(o) > 0; {
		if o[0] == 0 {
			break
		}
		if o[0] == 1 {
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			break
		}
		switch {
		case o[0] == 2 && o[1] == 4:
			s.mss = binary.BigEndian.Uint16(o[2:])
		case o[0] == 3 && o[1] == 3:
			s.ws = int(o[2])
		case o[0] == 4 && o[1] == 2:
			s.sackOK = true
		case o[0] == 8 && o[1] == 10:
			s.ts, s.tsval, s.tsecr = true, binary.BigEndian.Uint32(o[2:]), binary.BigEndian.Uint32(o[6:])
		}
		o = o[o[1]:]
	}
	return s, true
}

// build returns the TCP header, options and payload of s, checksummed.
func (s seg) build() []byte {
	var o []byte
	if s.mss != 0 {
		o = append(o, 2, 4, byte(s.mss>>8), byte(s.mss))
	}
	if s.ts {
		if s.sackOK {
			o = append(o, 4, 2)
		} else {
			o = append(o, 1, 1)
		}
		o = append(o, 8, 10)
		o = binary.BigEndian.AppendUint32(o, s.tsval)
		o = binary.BigEndian.AppendUint32(o, s.tsecr)
	} else if s.sackOK {
		o = append(o, 1, 1, 4, 2)
	}
	if s.ws >= 0 {
		o = append(o, 1, 3, 3, byte(s.ws))
	}
	b := make([]byte, 20, 20+len(o)+len(s.payload))
	binary.BigEndian.PutUint16(b[0:], s.src.Port())
	binary.BigEndian.PutUint16(b[2:], s.dst.Port())
	binary.BigEndian.PutUint32(b[4:], s.seq)
	binary.BigEndian.PutUint32(b[8:], s.ack)
	b[12] = byte((20+len(o))/4) << 4
	b[13] = s.flags
	binary.BigEndian.PutUint16(b[14:], s.win)
	b = append(b, o...)
	b = append(b, s.payload...)
	binary.BigEndian.PutUint16(b[16:], checksum(s.src.Addr(), s.dst.Addr(), b))
	return b
}

// checksum is a plain reference of the TCP checksum (RFC 1071 sum over the
// pseudo-header and the segment).
func checksum(src, dst netip.Addr, b []byte) uint16 {
	var p []byte
	p = append(p, src.AsSlice()...)
	p = append(p, dst.AsSlice()...)
	p = binary.BigEndian.AppendUint32(p, uint32(len(b)))
	p = append(p, 0, 0, 0, 6)
	p = append(p, b...)
	if len(p)%2 == 1 {
		p = append(p, 0)
	}
	var sum uint64
	for i := 0; i < len(p); i += 2 {
		sum += uint64(binary.BigEndian.Uint16(p[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// send transmits s from a raw socket in ns (the kernel adds the IP header).
func send(ns *netlab.NS, s seg) error {
	return ns.Do(func() error {
		fam := unix.AF_INET
		if s.src.Addr().Is6() {
			fam = unix.AF_INET6
		}
		fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var from, to unix.Sockaddr
		if fam == unix.AF_INET {
			from = &unix.SockaddrInet4{Addr: s.src.Addr().As4()}
			to = &unix.SockaddrInet4{Addr: s.dst.Addr().As4()}
		} else {
			from = &unix.SockaddrInet6{Addr: s.src.Addr().As16()}
			to = &unix.SockaddrInet6{Addr: s.dst.Addr().As16()}
		}
		if err := unix.Bind(fd, from); err != nil {
			return err
		}
		return unix.Sendto(fd, s.build(), 0, to)
	})
}

// tap reads the TCP segments arriving on an interface of a namespace.
type tap struct {
	fd  int
	buf []byte
}

func openTap(t *testing.T, ns *netlab.NS, ifname string) *tap {
	t.Helper()
	var fd int
	err := ns.Do(func() (err error) {
		proto := int(htons(unix.ETH_P_ALL))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		ifi, err := ns.LinkIndex(ifname)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi}); err != nil {
			return err
		}
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		t.Fatalf("AF_PACKET tap in %s: %v", ns.Name(), err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &tap{fd: fd, buf: make([]byte, 65536)}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

var errTimeout = errors.New("no matching segment in time")

// next returns the next incoming segment that match accepts, waiting up to d.
func (tp *tap) next(d time.Duration, match func(seg) bool) (seg, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(tp.fd, tp.buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return seg{}, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if s, ok := parse(tp.buf[:n]); ok && match(s) {
			return s, nil
		}
	}
	return seg{}, errTimeout
}

// monoMS is the kernel's TCP clock: CLOCK_MONOTONIC in milliseconds.
func monoMS() uint32 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint32(ts.Nano() / 1e6)
}

// synAckPlan says how the responder answers a SYN.
type synAckPlan struct {
	isn     uint32
	mss     uint16 // MSS advertised to the client
	ws      int    // our shift when the client offers scaling
	win     uint16 // SYN-ACK window (SYN proxies send 0)
	tsAhead int32  // our TSval minus the server's clock
}

// answerSYN waits for a SYN to the server's port, answers it and returns it.
func answerSYN(tp *tap, srv *netlab.NS, plan synAckPlan) (syn_, synack seg, err error) {
	syn_, err = tp.next(5*time.Second, func(s seg) bool { return s.dst.Port() == port && s.flags&(syn|ack) == syn })
	if err != nil {
		return syn_, synack, fmt.Errorf("waiting for the SYN: %w", err)
	}
	synack = seg{src: syn_.dst, dst: syn_.src, seq: plan.isn, ack: syn_.seq + 1, flags: syn | ack,
		win: plan.win, mss: plan.mss, ws: -1, sackOK: syn_.sackOK}
	if syn_.ws >= 0 {
		synack.ws = plan.ws
	}
	if syn_.ts {
		synack.ts, synack.tsval, synack.tsecr = true, uint32(int32(monoMS())+plan.tsAhead), syn_.tsval
	}
	return syn_, synack, send(srv, synack)
}

// handshakeOf is what a SYN proxy knows once the ACK arrives.
func handshakeOf(syn_, synack, ack_ seg) handoff.Handshake {
	h := handoff.Handshake{
		ClientISN: syn_.seq, ServerISN: synack.seq,
		MSS:    syn_.mss,
		SACKOK: syn_.sackOK && synack.sackOK,
		Window: ack_.win, Payload: ack_.payload,
	}
	h.Tuple.Client, h.Tuple.Server = syn_.src, syn_.dst
	if h.MSS == 0 {
		h.MSS = 536
	}
	if syn_.ws >= 0 && synack.ws >= 0 {
		h.WScaleOK, h.ClientWScale, h.ServerWScale = true, uint8(min(syn_.ws, 14)), uint8(synack.ws)
	}
	if ack_.ts {
		h.Timestamps, h.TSval, h.TSecr = true, ack_.tsval, ack_.tsecr
	}
	return h
}

// netstat returns a TcpExt counter of the namespace.
func netstat(t *testing.T, ns *netlab.NS, name string) uint64 {
	t.Helper()
	var text []byte
	if err := ns.Do(func() (err error) {
		text, err = readFile("/proc/thread-self/net/netstat")
		return
	}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(text), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		keys, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(keys) == 0 || keys[0] != "TcpExt:" {
			continue
		}
		for j, k := range keys {
			if k == name && j < len(vals) {
				v, _ := strconv.ParseUint(vals[j], 10, 64)
				return v
			}
		}
	}
	t.Fatalf("no TcpExt counter %s", name)
	return 0
}
