package netlab_test

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// A switch namespace with a bridge; two hosts on ports of it, one with a
// permanent neighbour entry.
func TestBridgeAndNeighbour(t *testing.T) {
	needIP(t)
	l := netlabtest.New(t, prefix)
	var ns [3]*netlab.NS
	for i, role := range []string{"sw", "a", "b"} {
		n, err := l.AddNS(role)
		if err != nil {
			t.Fatal(err)
		}
		ns[i] = n
	}
	sw, a, b := ns[0], ns[1], ns[2]
	if err := sw.AddBridge("br0"); err != nil {
		t.Fatal(err)
	}
	if err := sw.AddAddr("br0", netlab.Host(net4, 3)); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*netlab.NS{a, b} {
		err := l.Link(n, sw, &netlab.LinkConfig{AName: "eth0", BName: "p" + n.Role(), BMaster: "br0",
			AAddrs: []netip.Prefix{netlab.Host(net4, uint64(i+1)), netlab.Host(net6, uint64(i+1))}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, dst := range []netip.Addr{netlab.Host(net4, 2).Addr(), netlab.Host(net6, 2).Addr(), netlab.Host(net4, 3).Addr()} {
		if err := ping(a, dst); err != nil {
			t.Errorf("ping %v across the bridge: %v", dst, err)
		}
	}
	out, err := exec.Command("ip", "-n", sw.Name(), "-o", "link", "show", "master", "br0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pa@") || !strings.Contains(string(out), "pb@") {
		t.Errorf("bridge ports: %v\n%s", err, out)
	}

	macB, err := b.HardwareAddr("eth0")
	if err != nil || len(macB) != 6 {
		t.Fatalf("HardwareAddr: %v, %v", macB, err)
	}
	out, _ = exec.Command("ip", "-n", b.Name(), "-br", "link", "show", "eth0").CombinedOutput()
	if !strings.Contains(string(out), macB.String()) {
		t.Errorf("HardwareAddr %v, ip says:\n%s", macB, out)
	}
	// A neighbour entry: the address .9, which nobody holds, is at b's
	// MAC; a's packets to it reach b's interface.
	ghost := netlab.Host(net4, 9).Addr()
	if err := a.SetNeighbour("eth0", ghost, macB); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("ip", "-n", a.Name(), "neigh", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ghost.String()+" lladdr "+macB.String()+" PERMANENT") {
		t.Errorf("neighbour entry: %v\n%s", err, out)
	}
	if err := a.SetNeighbour("eth0", ghost, macB); err != nil {
		t.Errorf("replacing the entry: %v", err)
	}
}

// The synproxy ruleset answers a SYN sent as a frame on a packet socket
// with a SYN-ACK captured on the same socket; removing it deletes the table.
func TestSynproxyAndPacketConn(t *testing.T) {
	p := netlabtest.NewPair(t, prefix, net4, net6)
	rule := packet.Rule{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, Timestamp: true, SACKPerm: true}
	remove, err := p.B.Synproxy("spltest", rule)
	if err != nil {
		t.Skipf("SKIPPED LOUDLY: the kernel lacks nft synproxy: %v", err)
	}
	if err := p.B.SetSysctl("net.netfilter.nf_conntrack_tcp_loose", "0"); err != nil {
		t.Fatal(err)
	}
	pc, err := p.A.OpenPacket("veth0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	macB, err := p.B.HardwareAddr("veth0")
	if err != nil {
		t.Fatal(err)
	}
	eth := &packet.Ethernet{Dst: [6]byte(macB), Src: [6]byte(pc.MAC)}
	src := netip.AddrPortFrom(p.A4, 40000)
	dst := netip.AddrPortFrom(p.B4, 8080)
	syn := packet.Segment{Src: src, Dst: dst, Seq: 1234, Flags: packet.FlagSYN, Window: 1024,
		Options: packet.Options{MSS: 1400, HasMSS: true}}
	frame, err := packet.AppendSegment(nil, eth, &syn)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Send(frame); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(5 * time.Second)
	var got packet.Packet
	for time.Now().Before(deadline) {
		n, err := pc.Recv(buf, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 || got.Decode(buf[:n], packet.LinkEthernet) != nil {
			continue
		}
		if got.DstAddrPort() == src && got.Flags == packet.FlagSYN|packet.FlagACK {
			break
		}
		got = packet.Packet{}
	}
	if !got.Valid() || got.Ack != 1235 || !got.Options.HasMSS || got.Options.MSS != 1460 {
		t.Fatalf("no SYN-ACK from the ruleset (last: %+v)", got)
	}
	if net.HardwareAddr(got.EthDst[:]).String() != pc.MAC.String() {
		t.Errorf("SYN-ACK to %v, the socket's interface is %v", net.HardwareAddr(got.EthDst[:]), pc.MAC)
	}
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	out, err := p.B.CombinedOutput(t.Context(), "nft", "list", "tables")
	if err == nil && strings.Contains(string(out), "spltest") {
		t.Errorf("table still there after remove:\n%s", out)
	}
}
