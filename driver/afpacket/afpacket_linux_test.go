package afpacket

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Addresses of this package's tests: 10.99.46.0/24 .. 10.99.47.0/24,
// fd00:99:46::/64 .. fd00:99:47::/64.

const testPort = 9000

// synPacket builds an IPv4 or IPv6 TCP SYN from src to dst:testPort with a
// correct checksum.
func synPacket(src, dst netip.Addr, sport uint16, seq uint32) []byte {
	seg := packet.Segment{Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, testPort),
		Seq: seq, Flags: packet.FlagSYN, Window: 64240, Options: packet.Options{HasMSS: true, MSS: 1460}}
	b, err := packet.AppendSegment(nil, nil, &seg)
	if err != nil {
		panic(err)
	}
	return b
}

// checksumOK verifies the IP (v4) and TCP checksums of frame f.
func checksumOK(f []byte) bool {
	var p packet.Packet
	return p.Decode(f, packet.LinkEthernet) == nil && p.VerifyChecksums() == nil
}

// ipVersion returns the IP version of frame f.
func ipVersion(f []byte) byte { return f[packet.EthernetHeaderLen] >> 4 }

// udpReply builds into buf an Ethernet frame with a UDP datagram answering
// frame r (MAC addresses, IP addresses and ports swapped), with payload
// "ok".
func udpReply(buf, r []byte, dport uint16) []byte {
	copy(buf[0:6], r[6:12])
	copy(buf[6:12], r[0:6])
	copy(buf[12:14], r[12:14])
	frame := buf
	buf, r = buf[packet.EthernetHeaderLen:], r[packet.EthernetHeaderLen:]
	v6 := r[0]>>4 == 6
	var ip []byte
	if v6 {
		ip = buf[:40]
		clear(ip)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], 10)
		ip[6], ip[7] = 17, 64
		copy(ip[8:24], r[24:40])
		copy(ip[24:40], r[8:24])
	} else {
		ip = buf[:20]
		clear(ip)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], 30)
		ip[8], ip[9] = 64, 17
		copy(ip[12:16], r[16:20])
		copy(ip[16:20], r[12:16])
		binary.BigEndian.PutUint16(ip[10:], packet.IPv4HeaderChecksum(ip))
	}
	rt := r[int(r[0]&0xf)*4:]
	if v6 {
		rt = r[40:]
	}
	u := buf[len(ip) : len(ip)+10]
	binary.BigEndian.PutUint16(u[0:], testPort)
	copy(u[2:4], rt[0:2]) // to the request's source port ...
	binary.BigEndian.PutUint16(u[4:], 10)
	binary.BigEndian.PutUint16(u[6:], 0)
	copy(u[8:], "ok")
	if v6 {
		// UDP over IPv6 needs a checksum.
		src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		binary.BigEndian.PutUint16(u[6:], ^packet.Sum(u, packet.PseudoHeaderSum(src, dst, 17, len(u))))
	}
	_ = dport
	return frame[:packet.EthernetHeaderLen+len(ip)+10]
}

type rig struct {
	p   *netlabtest.Pair
	d   *Driver
	raw int // raw IP sockets in A, for sending SYNs
	r6  int
}

func newRig(t *testing.T, sub int, cfg Config) *rig {
	t.Helper()
	netlabtest.Need(t)
	v4 := netip.MustParsePrefix("10.99." + itoa(sub) + ".0/24")
	v6 := netip.MustParsePrefix("fd00:99:" + itoa(sub) + "::/64")
	p := netlabtest.NewPair(t, "splap", v4, v6)
	r := &rig{p: p}
	cfg.Interface, cfg.Port = "veth0", testPort
	if err := p.B.Do(func() (err error) { r.d, err = Open(&cfg); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.d.Close() })
	watchdog := time.AfterFunc(20*time.Second, func() { r.d.Close() })
	t.Cleanup(func() { watchdog.Stop() })
	if err := p.A.Do(func() (err error) {
		if r.raw, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW); err != nil {
			return err
		}
		r.r6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(r.raw); unix.Close(r.r6) })
	return r
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// send sends n SYNs from A to B, alternating IPv4 and IPv6 when both is set.
func (r *rig) send(t *testing.T, n int, both bool) {
	t.Helper()
	for i := 0; i < n; i++ {
		if both && i%2 == 1 {
			b := synPacket(r.p.A6, r.p.B6, uint16(20000+i%40000), uint32(i))
			sa := &unix.SockaddrInet6{Addr: r.p.B6.As16()}
			if err := unix.Sendto(r.r6, b, 0, sa); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b := synPacket(r.p.A4, r.p.B4, uint16(20000+i%40000), uint32(i))
		if err := unix.Sendto(r.raw, b, 0, &unix.SockaddrInet4{Addr: r.p.B4.As4()}); err != nil {
			t.Fatal(err)
		}
	}
}

// readBatch runs ReadBatch on q; a watchdog set up once per rig closes the
// driver if the test hangs, so that ReadBatch returns.
func readBatch(t *testing.T, r *rig, q driver.Queue, pkts []driver.Packet) int {
	n, err := q.ReadBatch(pkts)
	if err != nil {
		t.Fatalf("ReadBatch: %v", err)
	}
	return n
}

// TestReceiveTransmit: SYNs from A reach B's ring as Ethernet frames with
// valid checksums (including those a local TCP stack sent with an offloaded
// checksum); frames written on B's transmit ring reach a UDP socket in A,
// which proves they go out as given.
func TestReceiveTransmit(t *testing.T) {
	for _, mode := range []struct {
		name string
		cfg  Config
	}{{"ring", Config{}}, {"sendmmsg", Config{SendMMsg: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			sub := 46
			if mode.cfg.SendMMsg {
				sub = 47
			}
			r := newRig(t, sub, mode.cfg)
			if got := r.d.Counters().TxRing; got == mode.cfg.SendMMsg {
				t.Fatalf("TxRing = %v", got)
			}
			var uc [2]net.PacketConn
			for i, a := range []netip.Addr{r.p.A4, r.p.A6} {
				c, err := r.p.A.ListenPacket("udp", netip.AddrPortFrom(a, 20000+uint16(i)).String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				uc[i] = c
			}
			r.send(t, 2, true)
			// A real TCP stack's SYN, with an offloaded checksum.
			go r.p.A.Do(func() error {
				c, err := net.DialTimeout("tcp", netip.AddrPortFrom(r.p.B4, testPort).String(), 2*time.Second)
				if err == nil {
					c.Close()
				}
				return nil
			})
			q := r.d.Queues()[0]
			pkts := make([]driver.Packet, q.BatchSize())
			var got [][]byte
			tx := make([][]byte, 0, q.BatchSize())
			buf := make([]byte, 128*q.BatchSize())
			for len(got) < 3 {
				n := readBatch(t, r, q, pkts)
				tx = tx[:0]
				for i, p := range pkts[:n] {
					if p.Link != driver.LinkEthernet {
						t.Errorf("packet %d: link %v", i, p.Link)
					}
					if !checksumOK(p.Data) {
						t.Errorf("packet %d: bad checksum % x", i, p.Data)
					}
					got = append(got, append([]byte(nil), p.Data...))
					if len(got) <= 2 {
						tx = append(tx, udpReply(buf[i*128:], p.Data, 0))
					}
				}
				if len(tx) > 0 {
					if s, err := q.WriteBatch(tx); s != len(tx) || err != nil {
						t.Fatalf("WriteBatch: %d of %d, %v", s, len(tx), err)
					}
				}
				if err := q.Release(pkts[:n]); err != nil {
					t.Fatal(err)
				}
			}
			if ipVersion(got[0]) != 4 || ipVersion(got[1]) != 6 || ipVersion(got[2]) != 4 {
				t.Errorf("versions %d %d %d", ipVersion(got[0]), ipVersion(got[1]), ipVersion(got[2]))
			}
			for i, c := range uc {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, 16)
				n, from, err := c.ReadFrom(b)
				if err != nil || string(b[:n]) != "ok" {
					t.Fatalf("reply %d: %q from %v, %v", i, b[:n], from, err)
				}
			}
		})
	}
}

// TestCloseUnblocks: Close wakes a ReadBatch blocked on an empty ring and
// Wake makes it return no packets.
func TestCloseUnblocks(t *testing.T) {
	r := newRig(t, 46, Config{Workers: 2})
	qs := r.d.Queues()
	if len(qs) != 2 {
		t.Fatalf("%d queues", len(qs))
	}
	q := qs[0].(*Queue)
	pkts := make([]driver.Packet, 8)
	res := make(chan error, 1)
	go func() {
		n, err := q.ReadBatch(pkts)
		if err == nil && n != 0 {
			err = errors.New("woken ReadBatch returned packets")
		}
		res <- err
	}()
	time.Sleep(50 * time.Millisecond)
	q.Wake()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	go func() { _, err := q.ReadBatch(pkts); res <- err }()
	time.Sleep(50 * time.Millisecond)
	r.d.Close()
	if err := <-res; !errors.Is(err, driver.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestZeroAllocSteadyState pins the steady state at zero allocations: a
// receive burst, replies written to the transmit ring, verdicts released
// (some packets given back to the stack), with SYNs flowing from A over the
// veth pair, IPv4 and IPv6; and the same on the proven queue (Config.Proven)
// with A's addresses proven.
func TestZeroAllocSteadyState(t *testing.T) {
	for _, mode := range []struct {
		name string
		cfg  Config
	}{{"ring", Config{}}, {"sendmmsg", Config{SendMMsg: true}}, {"proven", Config{Proven: &driver.Proven{}}}} {
		t.Run(mode.name, func(t *testing.T) {
			sub := 46
			if mode.cfg.SendMMsg {
				sub = 47
			}
			if mode.cfg.Proven != nil {
				sub = 54
			}
			// A long block timeout keeps the SYNs in one or two blocks
			// however slowly they are sent: with the default 1 ms, a
			// sender slowed down by a loaded machine spreads them over
			// more blocks than the ring has, the rest are dropped, and the
			// measured cycles would wait for packets that never come.
			cfg := mode.cfg
			cfg.BlockTimeout = time.Second
			r := newRig(t, sub, cfg)
			r.d.Prove(r.p.A4)
			r.d.Prove(r.p.A6)
			const runs = 20
			qs := r.d.Queues()
			q := qs[len(qs)-1] // the proven queue, with Config.Proven
			b := q.BatchSize()
			r.send(t, (runs+2)*b+b, true)
			pkts := make([]driver.Packet, b)
			tx := make([][]byte, 0, b)
			buf := make([]byte, 128*b)
			seen := 0
			cycle := func() {
				n := readBatch(t, r, q, pkts)
				tx = tx[:0]
				for i := range pkts[:n] {
					tx = append(tx, udpReply(buf[i*128:], pkts[i].Data, 0))
					if i%8 == 0 {
						pkts[i].Verdict = driver.VerdictAccept
					}
				}
				if s, err := q.WriteBatch(tx); s != n || err != nil {
					t.Fatalf("WriteBatch: %d of %d, %v", s, n, err)
				}
				if err := q.Release(pkts[:n]); err != nil {
					t.Fatalf("Release: %v", err)
				}
				seen += n
			}
			cycle() // the first block may be partial
			time.Sleep(20 * time.Millisecond)
			allocs := testing.AllocsPerRun(runs, cycle)
			if allocs != 0 {
				t.Errorf("%v allocations per ReadBatch/WriteBatch/Release cycle, want 0", allocs)
			}
			if seen < runs {
				t.Fatalf("only %d packets in %d cycles", seen, runs+2)
			}
			if r.d.Counters().Injected == 0 {
				t.Errorf("no packet was given back to the stack")
			}
			if c := r.d.Counters(); mode.cfg.Proven != nil && c.ProvenPackets != uint64(seen) {
				t.Errorf("%d packets read, %d counted on the proven queue", seen, c.ProvenPackets)
			}
			t.Logf("%d packets in %d cycles, %d re-injected", seen, runs+2, r.d.Counters().Injected)
		})
	}
}
