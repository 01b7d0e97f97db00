package fuzz

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/fuzz/parity"
)

// v4StyleChecksum rewrites the TCP checksum of an IPv6 packet to what
// nf_ip_checksum accepts: nft_synproxy_eval checks the checksum of every
// packet, IPv6 included, with that IPv4 routine, which builds an IPv4
// pseudo-header from the 8 bytes at offsets 12..19 of the network header and
// then sums the whole packet from the network header on (harmless for IPv4,
// whose header sums to zero with its own checksum).
func v4StyleChecksum(ip []byte) {
	tcp := ip[40:]
	tcp[16], tcp[17] = 0, 0
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	add(ip[12:20])
	s += 6 + uint32(len(tcp))
	add(ip[:40])
	add(tcp)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	binary.BigEndian.PutUint16(tcp[16:], ^uint16(s))
}

// TestHostSynproxyIPv6Checksum explains why a host kernel on hostV6Refusers
// answers no IPv6 SYN: its nft synproxy drops an IPv6 SYN whose checksum
// is right and answers one whose checksum was computed the IPv4 way
// (v4StyleChecksum), because the checksum is verified with nf_ip_checksum
// for both families; a SYN that reaches it without a verified checksum
// (CHECKSUM_NONE, as from a raw socket over veth) is dropped before
// syn_received is counted. The SYN-ACKs it then sends are checked like any
// other. On kernels that answer IPv6 SYNs the test only reports.
func TestHostSynproxyIPv6Checksum(t *testing.T) {
	l := newHostLab(t)
	g := hostGen(t)
	var uname unix.Utsname
	unix.Uname(&uname)
	release := unix.ByteSliceToString(uname.Release[:])
	refuses := false
	for _, p := range hostV6Refusers {
		refuses = refuses || strings.HasPrefix(release, p)
	}
	const n = 5
	right, v4style := 0, 0
	for range n {
		spec := g.Next(true)
		if l.exchange(t, &spec, time.Second) != nil {
			right++
		}
		spec = g.Next(true)
		ip := parity.BuildSYN(nil, &spec)
		v4StyleChecksum(ip)
		s := l.exchangeIP(t, &spec, ip, time.Second)
		if s == nil {
			continue
		}
		v4style++
		if res := parity.VerifyKeyless(s, &l.env); !res.OK {
			t.Errorf("SYN-ACK to a SYN with an IPv4-style checksum: %s", res.String())
		}
	}
	t.Logf("host kernel %s: IPv6 SYNs answered: %d/%d with the right checksum, %d/%d with the IPv4-style one", release, right, n, v4style, n)
	if refuses && v4style != n {
		t.Fatalf("host kernel %s refuses IPv6 SYNs, but not (only) for the IPv4-style checksum: the explanation in docs/parity.md no longer holds", release)
	}
}
