package afpacket

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Addresses of the tests in this file: 10.99.50.0/24 .. 10.99.51.0/24,
// fd00:99:50::/64 .. fd00:99:51::/64.

// TestLinkFlap: after the interface goes down and up again, the receive
// socket's error (ENETDOWN) is read once and the worker sleeps in poll(2)
// instead of waking up for it again and again; the next SYN is received.
func TestLinkFlap(t *testing.T) {
	r := newRig(t, 50, Config{})
	q := r.d.Queues()[0]
	pkts := make([]driver.Packet, q.BatchSize())
	got := make(chan int, 16)
	go func() {
		for {
			n, err := q.ReadBatch(pkts)
			if err != nil {
				close(got)
				return
			}
			q.Release(pkts[:n])
			if n > 0 {
				got <- n
			}
		}
	}()
	r.send(t, 1, false)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no SYN before the flap")
	}
	for _, cmd := range []string{"down", "up"} {
		if out, err := r.p.B.CombinedOutput(t.Context(), "ip", "link", "set", "veth0", cmd); err != nil {
			t.Fatalf("ip link set veth0 %s: %v %s", cmd, err, out)
		}
	}
	before := r.d.Counters().IdleWakeups
	time.Sleep(time.Second)
	c := r.d.Counters()
	// A spinning worker wakes up hundreds of thousands of times a second,
	// however loaded the machine; a sleeping one a handful of times.
	if idle := c.IdleWakeups - before; idle > 20 {
		t.Errorf("%d idle wake-ups in the second after a link flap (%d socket errors read)", idle, c.RxErrors)
	}
	t.Logf("after the flap: %d idle wake-ups in 1 s, %d socket errors read", c.IdleWakeups-before, c.RxErrors)
	if c.RxErrors == 0 {
		t.Errorf("the socket error of the flap was not read")
	}
	// The peer's end needs a moment to carry traffic again.
	deadline := time.After(10 * time.Second)
	for tick := time.Tick(200 * time.Millisecond); ; {
		r.send(t, 1, false)
		select {
		case <-got:
			return
		case <-tick:
		case <-deadline:
			t.Fatal("no SYN received after the flap")
		}
	}
}

// readUntil reads q until a frame for which stop returns true, and fails on
// any frame for which ok returns false. It gives up after 10 s.
func readUntil(t *testing.T, r *rig, q driver.Queue, ok, stop func(f []byte) bool) {
	t.Helper()
	pkts := make([]driver.Packet, q.BatchSize())
	timer := time.AfterFunc(10*time.Second, func() { q.(*Queue).Wake() })
	defer timer.Stop()
	for done := false; !done; {
		n := readBatch(t, r, q, pkts)
		if n == 0 {
			t.Fatal("timed out waiting for a frame")
		}
		for _, p := range pkts[:n] {
			if !ok(p.Data) {
				t.Errorf("frame handed to the engine: % x", p.Data[:min(len(p.Data), 64)])
			}
			if stop(p.Data) {
				done = true
			}
		}
		q.Release(pkts[:n])
	}
}

// dstIP returns the destination address of an untagged frame.
func dstIP(f []byte) netip.Addr {
	ip := f[packet.EthernetHeaderLen:]
	if ip[0]>>4 == 6 {
		return netip.AddrFrom16([16]byte(ip[24:40]))
	}
	return netip.AddrFrom4([4]byte(ip[16:20]))
}

// TestNotForThisHost: SYNs routed through the host (to an address that is
// not its own) and frames for another host's link-layer address (seen in
// promiscuous mode) are not handed to the engine, and are counted; SYNs to
// the host's own addresses are.
func TestNotForThisHost(t *testing.T) {
	r := newRig(t, 51, Config{})
	other4, other6 := netip.MustParseAddr("10.99.59.9"), netip.MustParseAddr("fd00:99:59::9")
	if err := r.p.A.AddRoute(netip.MustParsePrefix("10.99.59.0/24"), r.p.B4, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.p.A.AddRoute(netip.MustParsePrefix("fd00:99:59::/64"), r.p.B6, ""); err != nil {
		t.Fatal(err)
	}
	if out, err := r.p.B.CombinedOutput(t.Context(), "ip", "link", "set", "veth0", "promisc", "on"); err != nil {
		t.Fatalf("promisc: %v %s", err, out)
	}
	// Routed through B: B's link-layer address, another IP address.
	if err := unix.Sendto(r.raw, synPacket(r.p.A4, other4, 30000, 1), 0, &unix.SockaddrInet4{Addr: other4.As4()}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendto(r.r6, synPacket(r.p.A6, other6, 30001, 1), 0, &unix.SockaddrInet6{Addr: other6.As16()}); err != nil {
		t.Fatal(err)
	}
	// Another host's link-layer address, B's IP address.
	var idx int
	var src net.HardwareAddr
	err := r.p.A.Do(func() error {
		ifi, err := net.InterfaceByName("veth0")
		if err != nil {
			return err
		}
		idx, src = ifi.Index, ifi.HardwareAddr
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		other := [8]byte{0x02, 0, 0, 0, 0, 0x99}
		f := append(append(append(other[:6:6], src...), 0x08, 0x00), synPacket(r.p.A4, r.p.B4, 30002, 1)...)
		return unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: idx, Halen: 6, Addr: other})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Then one for B.
	if err := unix.Sendto(r.raw, synPacket(r.p.A4, r.p.B4, 30003, 1), 0, &unix.SockaddrInet4{Addr: r.p.B4.As4()}); err != nil {
		t.Fatal(err)
	}
	q := r.d.Queues()[0]
	readUntil(t, r, q, func(f []byte) bool {
		return dstIP(f) == r.p.B4 && f[0] != 0x02
	}, func(f []byte) bool {
		return binary.BigEndian.Uint16(f[packet.EthernetHeaderLen+20:]) == 30003
	})
	s := r.d.Stats().Skipped
	if s.NotLocal != 2 || s.NotHost != 1 {
		t.Errorf("skipped %+v, want 2 not local and 1 not for this host", s)
	}
}

// TestLocalAddressesFollowed: an address added to the host after Open, and a
// prefix routed to the host as a whole (a local route), are served.
func TestLocalAddressesFollowed(t *testing.T) {
	r := newRig(t, 51, Config{})
	if err := r.p.A.AddRoute(netip.MustParsePrefix("10.99.58.0/23"), r.p.B4, ""); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"addr", "add", "10.99.59.9/32", "dev", "lo"},
		{"route", "add", "local", "10.99.58.0/24", "dev", "lo"},
	} {
		if out, err := r.p.B.CombinedOutput(t.Context(), "ip", args...); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	q := r.d.Queues()[0]
	for _, dst := range []netip.Addr{netip.MustParseAddr("10.99.59.9"), netip.MustParseAddr("10.99.58.7")} {
		// The watch reloads within moments of the change; SYNs sent
		// before that are skipped, as their retransmissions would not be.
		stop := make(chan struct{})
		go func() {
			for i := uint32(0); ; i++ {
				unix.Sendto(r.raw, synPacket(r.p.A4, dst, 31000, i), 0, &unix.SockaddrInet4{Addr: dst.As4()})
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		readUntil(t, r, q, func(f []byte) bool { return dstIP(f) == dst }, func(f []byte) bool { return true })
		close(stop)
	}
}

// TestTaggedAndExtensionHeaders: a SYN on a VLAN (whose tag the kernel takes
// out of the frame) reaches the engine with its tag back in place, so that
// the reply goes out on the same VLAN; an IPv6 SYN behind extension headers
// reaches it too, and decodes; a segment behind extension headers to another
// port does not. A tagged frame given back to the stack is re-injected.
//
// The same with Config.Proven, whose eBPF filters repeat the classic one's
// tests: on the workers' queue with no source proven, and on the proven
// queue with A's addresses proven.
func TestTaggedAndExtensionHeaders(t *testing.T) {
	for _, mode := range []struct {
		name   string
		cfg    Config
		proven bool
	}{{"classic", Config{}, false}, {"workers", Config{Proven: &driver.Proven{}}, false}, {"proven", Config{Proven: &driver.Proven{}}, true}} {
		t.Run(mode.name, func(t *testing.T) { testTaggedAndExtensionHeaders(t, mode.cfg, mode.proven) })
	}
}

func testTaggedAndExtensionHeaders(t *testing.T, cfg Config, proven bool) {
	r := newRig(t, 50, cfg)
	if proven {
		r.d.Prove(r.p.A4)
		r.d.Prove(r.p.A6)
	}
	// This kernel may lack VLAN devices: the tagged frame is written on
	// A's veth0 as it is. B's kernel takes the tag out before its taps.
	bmac, err := r.p.B.HardwareAddr("veth0")
	if err != nil {
		t.Fatal(err)
	}
	err = r.p.A.Do(func() error {
		ifi, err := net.InterfaceByName("veth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		f := append(append([]byte(nil), bmac...), ifi.HardwareAddr...)
		f = append(f, 0x81, 0x00, 0x00, 100, 0x08, 0x00)
		f = append(f, synPacket(r.p.A4, r.p.B4, 32000, 1)...)
		return unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Addr: [8]byte(append(bmac[:6:6], 0, 0))})
	})
	if err != nil {
		t.Fatal(err)
	}
	// An IPv6 SYN behind a destination options header (8 bytes of
	// padding), then the same to another port.
	for _, port := range []uint16{testPort + 1, testPort} {
		syn := synPacket(r.p.A6, r.p.B6, 32001, 1)
		binary.BigEndian.PutUint16(syn[40+2:], port)
		binary.BigEndian.PutUint16(syn[40+16:], 0)
		var p packet.Packet
		if err := p.Decode(syn, packet.LinkIP); err != nil {
			t.Fatal(err)
		}
		c := packet.TCPChecksum(p.Src, p.Dst, p.Segment())
		binary.BigEndian.PutUint16(syn[40+16:], c)
		ext := []byte{packet.ProtoTCP, 0, 1, 4, 0, 0, 0, 0}
		b := append(append(append([]byte(nil), syn[:40]...), ext...), syn[40:]...)
		b[6] = packet.ProtoDstOpts
		binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
		if err := unix.Sendto(r.r6, b, 0, &unix.SockaddrInet6{Addr: r.p.B6.As16()}); err != nil {
			t.Fatal(err)
		}
	}
	qs := r.d.Queues()
	q := qs[0]
	if proven {
		q = qs[len(qs)-1]
	}
	pkts := make([]driver.Packet, q.BatchSize())
	timer := time.AfterFunc(10*time.Second, func() { q.(*Queue).Wake() })
	defer timer.Stop()
	var tagged, ext bool
	for !tagged || !ext {
		n := readBatch(t, r, q, pkts)
		if n == 0 {
			t.Fatalf("timed out: tagged SYN seen %v, SYN with extension headers seen %v; skipped %+v",
				tagged, ext, r.d.Stats().Skipped)
		}
		for i := range pkts[:n] {
			var p packet.Packet
			if err := p.Decode(pkts[i].Data, packet.LinkEthernet); err != nil {
				t.Fatalf("frame does not decode: %v: % x", err, pkts[i].Data)
			}
			if p.VerifyChecksums() != nil {
				t.Errorf("bad checksum: % x", pkts[i].Data)
			}
			switch {
			case p.DstPort != testPort:
				t.Errorf("segment to port %d", p.DstPort)
			case p.VLANTags == 1 && p.Dst == r.p.B4:
				if got := binary.BigEndian.Uint16(pkts[i].Data[14:]) & 0xfff; got != 100 {
					t.Errorf("VLAN id %d", got)
				}
				tagged = true
				pkts[i].Verdict = driver.VerdictAccept
			case p.ExtHeaders == 1 && p.Dst == r.p.B6:
				ext = true
			default:
				t.Errorf("unexpected frame % x", pkts[i].Data)
			}
		}
		if err := q.Release(pkts[:n]); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	if got := r.d.Counters().Injected; got != 1 {
		t.Errorf("%d packets re-injected, want 1", got)
	}
}
