package rawsock

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBatchSend: queued buffers leave in order, one datagram each, and the
// batch is empty afterwards.
func TestBatchSend(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	b := NewBatch(4)
	msgs := [][]byte{[]byte("one"), []byte("two"), []byte("three"), []byte("four"), []byte("five")}
	for i, m := range msgs {
		if got := b.Add(m); got != (i < 4) {
			t.Errorf("Add %d: %v", i, got)
		}
	}
	if b.Add(nil) {
		t.Error("Add of an empty buffer")
	}
	sent, failed, err := b.Send(fds[0])
	if sent != 4 || failed != 0 || err != nil || b.Len() != 0 {
		t.Fatalf("Send: %d sent, %d failed, %v; %d left", sent, failed, err, b.Len())
	}
	buf := make([]byte, 16)
	for _, m := range msgs[:4] {
		n, err := unix.Read(fds[1], buf)
		if err != nil || !bytes.Equal(buf[:n], m) {
			t.Fatalf("received %q, %v; want %q", buf[:n], err, m)
		}
	}
	// A refused message is counted and skipped.
	unix.Close(fds[1])
	b.Add(msgs[0])
	b.Add(msgs[1])
	if sent, failed, err := b.Send(fds[0]); sent != 0 || failed != 2 || err == nil {
		t.Errorf("Send to a closed peer: %d sent, %d failed, %v", sent, failed, err)
	}
}

// TestAddIP: the destination address comes from the packet's header; what
// is not an IPv4 or IPv6 packet is refused.
func TestAddIP(t *testing.T) {
	v4 := make([]byte, 20)
	v4[0] = 0x45
	copy(v4[16:], []byte{10, 99, 3, 2})
	v6 := make([]byte, 40)
	v6[0] = 0x60
	copy(v6[24:], []byte{0xfd, 0, 0, 0x99, 0, 3, 15: 2})
	for _, tc := range []struct {
		name string
		p    []byte
		ok   bool
		addr []byte
	}{
		{"ipv4", v4, true, []byte{10, 99, 3, 2}},
		{"ipv6", v6, true, v6[24:40]},
		{"empty", nil, false, nil},
		{"short ipv4", v4[:19], false, nil},
		{"short ipv6", v6[:39], false, nil},
		{"version 5", append([]byte{0x55}, v4[1:]...), false, nil},
	} {
		b := NewBatch(1)
		if got := b.AddIP(tc.p); got != tc.ok || b.Len() != map[bool]int{true: 1}[tc.ok] {
			t.Errorf("%s: AddIP %v, Len %d", tc.name, got, b.Len())
			continue
		}
		if !tc.ok {
			continue
		}
		var got []byte
		if tc.p[0]>>4 == 4 {
			got = b.sa4[0].Addr[:]
			if b.msgs[0].hdr.Namelen != unix.SizeofSockaddrInet4 || b.sa4[0].Family != unix.AF_INET {
				t.Errorf("%s: address length %d family %d", tc.name, b.msgs[0].hdr.Namelen, b.sa4[0].Family)
			}
		} else {
			got = b.sa6[0].Addr[:]
			if b.msgs[0].hdr.Namelen != unix.SizeofSockaddrInet6 || b.sa6[0].Family != unix.AF_INET6 {
				t.Errorf("%s: address length %d family %d", tc.name, b.msgs[0].hdr.Namelen, b.sa6[0].Family)
			}
		}
		if !bytes.Equal(got, tc.addr) {
			t.Errorf("%s: destination % x, want % x", tc.name, got, tc.addr)
		}
		if b.AddIP(tc.p) {
			t.Errorf("%s: AddIP on a full batch", tc.name)
		}
	}
}

// TestNoAllocs pins queueing and sending at zero allocations.
func TestNoAllocs(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	b := NewBatch(8)
	p := []byte("packet")
	buf := make([]byte, 16)
	if n := testing.AllocsPerRun(100, func() {
		for range 8 {
			b.Add(p)
		}
		if sent, _, err := b.Send(fds[0]); sent != 8 || err != nil {
			t.Fatalf("Send: %d, %v", sent, err)
		}
		for range 8 {
			unix.Read(fds[1], buf)
		}
	}); n != 0 {
		t.Errorf("%v allocations per batch, want 0", n)
	}
}
