package afxdp

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Addresses of this package's tests: 10.99.150.0/24 .. 10.99.156.0/24,
// fd00:99:150::/64 .. fd00:99:156::/64.

func ipVersion(f []byte) byte { return f[packet.EthernetHeaderLen] >> 4 }

// udpReply builds into buf an Ethernet frame with a UDP datagram answering
// frame r (MAC addresses, IP addresses and ports swapped, from testPort),
// with payload "ok".
func udpReply(buf, r []byte) []byte {
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
	copy(u[2:4], rt[0:2])
	binary.BigEndian.PutUint16(u[4:], 10)
	binary.BigEndian.PutUint16(u[6:], 0)
	copy(u[8:], "ok")
	if v6 {
		src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		binary.BigEndian.PutUint16(u[6:], ^packet.Sum(u, packet.PseudoHeaderSum(src, dst, 17, len(u))))
	}
	return frame[:packet.EthernetHeaderLen+len(ip)+10]
}

type rig struct {
	p   *netlabtest.Pair
	d   *Driver
	raw int // raw IP sockets in A, for sending SYNs
	r6  int
}

// newRig opens the driver on B's veth0. A failing or hanging test still
// detaches the program: Close runs in t.Cleanup and from a watchdog, and
// the namespace (and its veth) goes with the lab.
func newRig(t *testing.T, sub int, cfg Config) *rig {
	t.Helper()
	netlabtest.Need(t)
	v4 := netip.MustParsePrefix("10.99." + itoa(sub) + ".0/24")
	v6 := netip.MustParsePrefix("fd00:99:" + itoa(sub) + "::/64")
	p := netlabtest.NewPair(t, "splxd", v4, v6)
	r := &rig{p: p}
	cfg.Interface, cfg.Port = "veth0", testPort
	if err := p.B.Do(func() (err error) { r.d, err = Open(&cfg); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.d.Close() })
	watchdog := time.AfterFunc(30*time.Second, func() { r.d.Close() })
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

func itoa(i int) string {
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

// send sends n SYNs from A to B, alternating IPv4 and IPv6 when both is set.
func (r *rig) send(t *testing.T, n int, both bool) {
	t.Helper()
	for i := 0; i < n; i++ {
		if both && i%2 == 1 {
			b := synPacket(r.p.A6, r.p.B6, uint16(20000+i%40000), uint32(i))
			if err := unix.Sendto(r.r6, b, 0, &unix.SockaddrInet6{Addr: r.p.B6.As16()}); err != nil {
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

func readBatch(t *testing.T, q driver.Queue, pkts []driver.Packet) int {
	t.Helper()
	n, err := q.ReadBatch(pkts)
	if err != nil {
		t.Fatalf("ReadBatch: %v", err)
	}
	return n
}

type modeCase struct {
	mode Mode
	sub  int // the lab's third octet
	busy bool
}

var modes = []modeCase{{ModeNative, 150, false}, {ModeGeneric, 151, false}, {ModeNative, 154, true}}

func (m modeCase) name() string {
	if m.busy {
		return m.mode.String() + "-busypoll"
	}
	return m.mode.String()
}

// TestReceiveTransmit: SYNs from A reach B's socket as Ethernet frames with
// valid checksums (including a local TCP stack's, sent with an offloaded
// checksum); frames written on the TX ring reach a UDP socket in A, which
// proves they go out as given. In native and generic mode.
func TestReceiveTransmit(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name(), func(t *testing.T) {
			r := newRig(t, m.sub, Config{Mode: m.mode, BusyPoll: m.busy})
			if got := r.d.Mode(); got != m.mode {
				t.Fatalf("mode %v, want %v", got, m.mode)
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
				n := readBatch(t, q, pkts)
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
						tx = append(tx, udpReply(buf[i*128:], p.Data))
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
			if c := r.d.Counters(); c.Program.Redirected < 3 {
				t.Errorf("program counters %+v", c.Program)
			}
		})
	}
}

// serve runs a loop on q that gives every packet back to the stack
// (VerdictAccept), until the queue closes.
func serve(q driver.Queue) {
	pkts := make([]driver.Packet, q.BatchSize())
	for {
		n, err := q.ReadBatch(pkts)
		if err != nil {
			return
		}
		for i := range pkts[:n] {
			pkts[i].Verdict = driver.VerdictAccept
		}
		q.Release(pkts[:n])
	}
}

// TestPassAndInject: the program passes traffic of other ports and the
// segments of existing sockets of the protected port to the stack; the
// packets the queue accepts (here: all it gets, a listener's handshakes)
// reach the stack through re-injection, data included, and a connection
// through them carries a megabyte each way.
func TestPassAndInject(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name(), func(t *testing.T) {
			r := newRig(t, m.sub+2, Config{Mode: m.mode, BusyPoll: m.busy})
			go serve(r.d.Queues()[0])
			// Another port: never seen by the queue.
			echo := func(ns interface {
				Listen(string, string) (net.Listener, error)
			}, addr string) {
				ln, err := ns.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						go func() { io.Copy(c, c); c.Close() }()
					}
				}()
			}
			// B's own connection from the protected port: A's segments
			// to it belong to a socket and pass.
			echo(r.p.A, netip.AddrPortFrom(r.p.A4, 7000).String())
			err := r.p.B.Do(func() error {
				// SO_REUSEADDR: the listener binds the port while this
				// connection is in TIME_WAIT.
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: r.p.B4.AsSlice(), Port: testPort},
					Control: func(_, _ string, c syscall.RawConn) error {
						return c.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
					}}
				c, err := d.Dial("tcp", netip.AddrPortFrom(r.p.A4, 7000).String())
				if err != nil {
					return err
				}
				c.Close()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if c := r.d.Counters(); c.Program.Socket == 0 || c.Program.Redirected != 0 {
				t.Errorf("the segments to B's own socket were not passed: %+v", c.Program)
			}
			echo(r.p.B, "[::]:9001")
			echo(r.p.B, "[::]:9000")
			for _, a := range []netip.Addr{r.p.B4, r.p.B6} {
				for _, port := range []uint16{9001, testPort} {
					roundTrip(t, r, netip.AddrPortFrom(a, port), 1<<20)
				}
			}
			c := r.d.Counters()
			if c.Injected == 0 {
				t.Errorf("nothing re-injected: %+v", c)
			}
			t.Logf("counters %+v", c)
		})
	}
}

// roundTrip sends n bytes from A to the echo server at to and reads them
// back.
func roundTrip(t *testing.T, r *rig, to netip.AddrPort, n int) {
	t.Helper()
	var c net.Conn
	if err := r.p.A.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", to.String(), 5*time.Second)
		return
	}); err != nil {
		t.Fatalf("dial %v: %v", to, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	want := bytes.Repeat([]byte("0123456789abcdef"), n/16)
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo via %v: %v", to, err)
	}
}

// TestCloseDetaches: after Close no XDP program is left on the interface,
// and Close unblocks a blocked ReadBatch; Wake makes it return no packets.
func TestCloseDetaches(t *testing.T) {
	r := newRig(t, 150, Config{})
	q := r.d.Queues()[0].(*Queue)
	pkts := make([]driver.Packet, 8)
	res := make(chan error, 2)
	go func() {
		n, err := q.ReadBatch(pkts)
		if err == nil && n != 0 {
			err = io.ErrUnexpectedEOF
		}
		res <- err
		_, err = q.ReadBatch(pkts)
		res <- err
	}()
	time.Sleep(50 * time.Millisecond)
	q.Wake()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ipLink(t, r), "xdp") {
		t.Fatalf("no XDP program on the interface: %s", ipLink(t, r))
	}
	r.d.Close()
	if err := <-res; err != driver.ErrClosed {
		t.Fatalf("ReadBatch after Close: %v", err)
	}
	if out := ipLink(t, r); strings.Contains(out, "xdp") {
		t.Fatalf("XDP program left after Close: %s", out)
	}
}

func ipLink(t *testing.T, r *rig) string {
	out, err := exec.Command("ip", "-n", r.p.B.Name(), "link", "show", "veth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v %s", err, out)
	}
	return string(out)
}

// TestNoAllocs: the steady state (read, release, write) allocates nothing.
func TestNoAllocs(t *testing.T) {
	t.Run("flood", func(t *testing.T) { testNoAllocs(t, newRig(t, 151, Config{BatchSize: 1})) })
	// With proven clients: A's IPv4 address is proven, so the IPv4 SYNs
	// arrive on the proven socket, the IPv6 ones on the first.
	t.Run("proven", func(t *testing.T) {
		r := newRig(t, 169, Config{BatchSize: 1, Proven: &driver.Proven{Timeout: time.Hour}})
		r.d.Prove(r.p.A4)
		testNoAllocs(t, r)
		if r.d.ProvenPackets() == 0 {
			t.Errorf("no packet on the proven socket: %+v", r.d.Counters())
		}
	})
}

func testNoAllocs(t *testing.T, r *rig) {
	const runs = 50
	r.send(t, runs+10, true)
	q := r.d.Queues()[0]
	pkts := make([]driver.Packet, 1)
	buf := make([]byte, 128)
	tx := make([][]byte, 1)
	allocs := testing.AllocsPerRun(runs, func() {
		n := readBatch(t, q, pkts)
		if n == 1 {
			pkts[0].Verdict = driver.VerdictDrop
			tx[0] = udpReply(buf, pkts[0].Data)
		}
		q.Release(pkts[:n])
		q.WriteBatch(tx)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet", allocs)
	}
}

// TestQueues: on an interface with two receive queues the driver opens a
// socket for each, and every SYN reaches one of them, whichever queue the
// sender's hash picked.
func TestQueues(t *testing.T) {
	netlabtest.Need(t)
	v4 := netip.MustParsePrefix("10.99.157.0/24")
	v6 := netip.MustParsePrefix("fd00:99:157::/64")
	p := netlabtest.NewPair(t, "splxq", v4, v6)
	// A second pair, vq in B, with two queues at each end.
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	sh("ip", "-n", p.A.Name(), "link", "add", "vq", "numtxqueues", "2", "numrxqueues", "2", "type", "veth",
		"peer", "name", "vq", "netns", p.B.Name(), "numtxqueues", "2", "numrxqueues", "2")
	sh("ip", "-n", p.A.Name(), "addr", "add", "10.99.158.1/24", "dev", "vq")
	sh("ip", "-n", p.B.Name(), "addr", "add", "10.99.158.2/24", "dev", "vq")
	sh("ip", "-n", p.A.Name(), "link", "set", "vq", "up")
	sh("ip", "-n", p.B.Name(), "link", "set", "vq", "up")
	var d *Driver
	if err := p.B.Do(func() (err error) { d, err = Open(&Config{Interface: "vq", Port: testPort}); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	watchdog := time.AfterFunc(30*time.Second, func() { d.Close() })
	t.Cleanup(func() { watchdog.Stop() })
	qs := d.Queues()
	if len(qs) != 2 {
		t.Fatalf("%d queues, want 2", len(qs))
	}
	const n = 64
	got := make(chan int, n)
	var per [2]atomic.Int64
	for i, q := range qs {
		go func() {
			pkts := make([]driver.Packet, q.BatchSize())
			for {
				k, err := q.ReadBatch(pkts)
				if err != nil {
					return
				}
				q.Release(pkts[:k])
				per[i].Add(int64(k))
				for range k {
					got <- 1
				}
			}
		}()
	}
	// Each SYN (a flow of its own) takes a queue by the sender's flow
	// hash.
	src, dst := netip.MustParseAddr("10.99.158.1"), netip.MustParseAddr("10.99.158.2")
	if err := p.A.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for i := 0; i < n; i++ {
			if err := unix.Sendto(fd, synPacket(src, dst, uint16(30000+i), uint32(i)), 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d SYNs received; program counters %+v", i, n, d.Counters().Program)
		}
	}
	t.Logf("SYNs per queue: %d, %d", per[0].Load(), per[1].Load())
}

// TestWriteBurst: a batch larger than the kernel's transmit budget per
// kick (32 frames in copy mode) leaves whole at once, without waiting for
// a later batch to kick the rest out.
func TestWriteBurst(t *testing.T) {
	for _, m := range modes[:2] {
		t.Run(m.name(), func(t *testing.T) {
			r := newRig(t, m.sub, Config{Mode: m.mode, BatchSize: 256})
			c, err := r.p.A.ListenPacket("udp", netip.AddrPortFrom(r.p.A4, 20000).String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r.send(t, 1, false)
			q := r.d.Queues()[0]
			pkts := make([]driver.Packet, q.BatchSize())
			n := readBatch(t, q, pkts)
			const burst = 200
			buf := make([]byte, 128*burst)
			tx := make([][]byte, burst)
			for i := range tx {
				tx[i] = udpReply(buf[i*128:], pkts[0].Data)
			}
			q.Release(pkts[:n])
			if s, err := q.WriteBatch(tx); s != burst || err != nil {
				t.Fatalf("WriteBatch: %d of %d, %v", s, burst, err)
			}
			b := make([]byte, 16)
			for i := 0; i < burst; i++ {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, _, err := c.ReadFrom(b); err != nil {
					t.Fatalf("%d of %d frames arrived: %v", i, burst, err)
				}
			}
		})
	}
}
