package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// TestE2EMalformed sends malformed segments to the protected port from the
// client's namespace on a raw socket (bad checksums, options that run past
// the header, data offsets beyond the segment, SYN+FIN, random header
// bytes): the daemon drops and counts them and an established connection
// carries on.
func TestE2EMalformed(t *testing.T) {
	testMalformed(t, 19, func(l *lab, metrics string) []string {
		return []string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--workers", "1", "--queue", "170",
			"--metrics", metrics}
	})
}

// testMalformed runs TestE2EMalformed in a lab on octet, with the daemon's
// arguments from args.
func testMalformed(t *testing.T, octet int, args func(l *lab, metrics string) []string) {
	l := newLab(t, octet, false)
	startLineServer(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	d := startDaemon(t, l.proxy, args(l, metrics)...)
	var c net.Conn
	if err := inNS(t, l.client, func() (err error) { c, err = net.DialTimeout("tcp", l.proxyIP+":8080", 10*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	roundTrip := func(w string) {
		t.Helper()
		fmt.Fprintf(c, "ECHO %s\n", w)
		if got, err := r.ReadString('\n'); err != nil || got != w+"\n" {
			t.Fatalf("established connection: %q, %v", got, err)
		}
	}
	roundTrip("before")

	src, dst := netip.MustParseAddr(l.clientIP).As4(), netip.MustParseAddr(l.proxyIP).As4()
	rng := rand.New(rand.NewPCG(1, 2))
	build := func(flags byte, opts []byte, doff int, badSum bool, payload []byte) []byte {
		tl := 20 + len(opts)
		b := make([]byte, 20+tl+len(payload))
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		b[8], b[9] = 64, 6
		copy(b[12:], src[:])
		copy(b[16:], dst[:])
		tcp := b[20:]
		binary.BigEndian.PutUint16(tcp[0:], uint16(20000+rng.IntN(20000)))
		binary.BigEndian.PutUint16(tcp[2:], 8080)
		binary.BigEndian.PutUint32(tcp[4:], rng.Uint32())
		binary.BigEndian.PutUint32(tcp[8:], rng.Uint32())
		if doff == 0 {
			doff = tl / 4
		}
		tcp[12] = byte(doff) << 4
		tcp[13] = flags
		copy(tcp[20:], opts)
		copy(tcp[tl:], payload)
		sum := packet.TCPChecksum(netip.AddrFrom4(src), netip.AddrFrom4(dst), tcp)
		if badSum {
			sum ^= 0x5a5a
		}
		binary.BigEndian.PutUint16(tcp[16:], sum)
		return b
	}
	var pkts [][]byte
	const each = 200
	for i := 0; i < each; i++ {
		pkts = append(pkts,
			build(0x02, []byte{2, 4, 5, 0xb4}, 0, true, nil),                         // bad checksum
			build(0x02, []byte{2, 40, 5, 0xb4}, 0, false, nil),                       // option past the header
			build(0x02, []byte{8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0}, 15, false, nil), // data offset beyond the segment
			build(0x03, nil, 0, false, nil),                                          // SYN+FIN
			build(byte(rng.IntN(256)), randBytes(rng, 4*rng.IntN(10)), 0, rng.IntN(2) == 0, randBytes(rng, rng.IntN(64))),
		)
	}
	err := inNS(t, l.client, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: dst}
		for i, p := range pkts {
			if err := unix.Sendto(fd, p, 0, to); err != nil {
				return fmt.Errorf("packet %d: %w", i, err)
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	roundTrip("after")
	m := scrape(t, l.proxy, metrics)
	reasons := []string{"checksum", "options", "header", "flags", "truncated", "not_tcp"}
	total := 0.0
	for _, k := range reasons {
		v := m[fmt.Sprintf(`synproxy_lite_malformed_total{reason=%q}`, k)]
		t.Logf("malformed %-9s %v", k, v)
		total += v
	}
	for _, k := range []string{"checksum", "options", "header", "flags"} {
		if v := m[fmt.Sprintf(`synproxy_lite_malformed_total{reason=%q}`, k)]; v < each {
			t.Errorf("malformed %s counted %v, want at least %d", k, v, each)
		}
	}
	if m["synproxy_lite_handed_over_total"] != 1 {
		t.Errorf("handed over %v, want 1 (a malformed packet became a connection?)", m["synproxy_lite_handed_over_total"])
	}
	if d.cmd.ProcessState != nil {
		t.Fatalf("the daemon exited: %v", d.cmd.ProcessState)
	}
	t.Logf("%d malformed packets sent, %v counted as malformed", len(pkts), total)
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
