package afpacket

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// TestTwoDriversOneInterface: two drivers of one process on one interface,
// for two ports (two services of one daemon), each receive every SYN to
// their own port. With one fanout group for the process, the kernel spread
// each port's packets over both drivers' sockets and the other one dropped
// them.
func TestTwoDriversOneInterface(t *testing.T) {
	r := newRig(t, 46, Config{Workers: 1})
	var d2 *Driver
	if err := r.p.B.Do(func() (err error) {
		d2, err = Open(&Config{Interface: "veth0", Port: testPort + 1, Workers: 1})
		return
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	watchdog := time.AfterFunc(20*time.Second, func() { d2.Close() })
	t.Cleanup(func() { watchdog.Stop() })

	const n = 32
	for i := 0; i < n; i++ {
		for _, port := range []uint16{testPort, testPort + 1} {
			seg := packet.Segment{Src: netip.AddrPortFrom(r.p.A4, uint16(20000+i)), Dst: netip.AddrPortFrom(r.p.B4, port),
				Seq: uint32(i), Flags: packet.FlagSYN, Window: 64240, Options: packet.Options{HasMSS: true, MSS: 1460}}
			b, err := packet.AppendSegment(nil, nil, &seg)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Sendto(r.raw, b, 0, &unix.SockaddrInet4{Addr: r.p.B4.As4()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each driver must see its port's n SYNs (and only its port's).
	for _, c := range []struct {
		d    *Driver
		port uint16
	}{{r.d, testPort}, {d2, testPort + 1}} {
		q := c.d.Queues()[0]
		pkts := make([]driver.Packet, q.BatchSize())
		got := 0
		for got < n {
			k, err := q.ReadBatch(pkts)
			if err != nil {
				t.Fatalf("port %d: ReadBatch after %d of %d SYNs: %v", c.port, got, n, err)
			}
			for _, p := range pkts[:k] {
				ip := p.Data[packet.EthernetHeaderLen:]
				if dport := binary.BigEndian.Uint16(ip[int(ip[0]&0xf)*4+2:]); dport != c.port {
					t.Errorf("port %d's driver got a packet to port %d", c.port, dport)
				}
				got++
			}
			if err := q.Release(pkts[:k]); err != nil {
				t.Fatal(err)
			}
		}
	}
}
