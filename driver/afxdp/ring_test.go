package afxdp

import (
	"testing"
)

// shared is the kernel's half of a ring in tests: the test moves its
// indices as the kernel would.
type shared struct {
	prod, cons, flags uint32
}

func newAddrRing(s *shared, size uint32) *addrRing {
	return &addrRing{ring: newRing(&s.prod, &s.cons, &s.flags, size), addrs: make([]uint64, size)}
}

// TestRingProducer: a producer ring (fill, TX) never gives out more slots
// than the consumer has freed, across the wrap of the 32-bit indices.
func TestRingProducer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start uint32 // both indices start here
	}{{"zero", 0}, {"wrap", ^uint32(0) - 5}} {
		t.Run(tc.name, func(t *testing.T) {
			s := &shared{prod: tc.start, cons: tc.start}
			r := newAddrRing(s, 8)
			if got := r.free(100); got != 8 {
				t.Fatalf("free = %d on an empty ring of 8", got)
			}
			i := r.reserve(5)
			for j := uint32(0); j < 5; j++ {
				*r.at(i + j) = uint64(j)
			}
			r.submit()
			if s.prod != tc.start+5 {
				t.Fatalf("producer %d, want %d", s.prod, tc.start+5)
			}
			if got := r.free(100); got != 3 {
				t.Fatalf("free = %d with 5 of 8 in use", got)
			}
			// The kernel consumes 4: they are free again, once the
			// cached index is read again.
			for j := uint32(0); j < 4; j++ {
				if got := r.addrs[(s.cons+j)&r.mask]; got != uint64(j) {
					t.Fatalf("slot %d holds %d", j, got)
				}
			}
			s.cons += 4
			if got := r.free(7); got != 7 {
				t.Fatalf("free(7) = %d after the kernel consumed 4", got)
			}
			if got := r.free(100); got != 7 {
				t.Fatalf("free = %d, want 7", got)
			}
			r.reserve(7)
			r.submit()
			if got := r.free(1); got != 0 {
				t.Fatalf("free = %d on a full ring", got)
			}
		})
	}
}

// TestRingConsumer: a consumer ring (RX, completion) reads what the kernel
// produced, no more, and hands slots back in order.
func TestRingConsumer(t *testing.T) {
	for _, start := range []uint32{0, ^uint32(0) - 2} {
		s := &shared{prod: start, cons: start}
		r := &descRing{ring: newRing(&s.prod, &s.cons, &s.flags, 4), descs: make([]desc, 4)}
		if got := r.avail(4); got != 0 {
			t.Fatalf("avail = %d on an empty ring", got)
		}
		for j := uint32(0); j < 3; j++ {
			r.descs[(start+j)&3] = desc{Addr: uint64(j) * frameSize, Len: 60 + j}
		}
		s.prod += 3
		if got := r.avail(2); got != 2 {
			t.Fatalf("avail(2) = %d with 3 produced", got)
		}
		if d := r.at(r.cachedCons + 1); d.Len != 61 {
			t.Fatalf("second descriptor %+v", *d)
		}
		r.release(2)
		if s.cons != start+2 {
			t.Fatalf("consumer %d, want %d", s.cons, start+2)
		}
		if got := r.avail(4); got != 1 {
			t.Fatalf("avail = %d with 1 left", got)
		}
		r.release(1)
		if got := r.avail(4); got != 0 {
			t.Fatalf("avail = %d on a drained ring", got)
		}
	}
}

// TestNeedWakeup: the flag the kernel sets is read through.
func TestNeedWakeup(t *testing.T) {
	s := &shared{}
	r := newAddrRing(s, 4)
	if r.needWakeup() {
		t.Fatal("need-wakeup without the flag")
	}
	s.flags = ringNeedWakeup
	if !r.needWakeup() {
		t.Fatal("the flag is not seen")
	}
	var noFlags ring
	if noFlags.needWakeup() {
		t.Fatal("a ring without a flags word needs a wake-up")
	}
}

// TestCompleteChecksum: a TCP checksum left partial (the pseudo-header sum
// only, as a sender with checksum offload leaves it) is completed; a
// correct one is left as it is, and a wrong one stays wrong.
func TestCompleteChecksum(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		src, dst := mustAddr("10.99.150.1"), mustAddr("10.99.150.2")
		if v6 {
			src, dst = mustAddr("fd00:99:150::1"), mustAddr("fd00:99:150::2")
		}
		ip := synPacket(src, dst, 40000, 7)
		frame := append(make([]byte, ethLen), ip...)
		if v6 {
			frame[12], frame[13] = 0x86, 0xdd
		} else {
			frame[12], frame[13] = 0x08, 0x00
		}
		good := append([]byte(nil), frame...)
		if !checksumOK(good) {
			t.Fatal("test frame has a bad checksum")
		}
		completeChecksum(frame)
		if string(frame) != string(good) {
			t.Fatalf("v6=%v: a correct checksum changed", v6)
		}
		seg := frame[len(frame)-len(ip)+ipHeaderLen(v6):]
		// Partial: the folded pseudo-header sum.
		ps := pseudoSum(src, dst, len(seg))
		seg[16], seg[17] = byte(ps>>8), byte(ps)
		completeChecksum(frame)
		if !checksumOK(frame) {
			t.Fatalf("v6=%v: a partial checksum was not completed", v6)
		}
		seg[16] ^= 0x5a
		completeChecksum(frame)
		if checksumOK(frame) {
			t.Fatalf("v6=%v: a wrong checksum was made right", v6)
		}
	}
}

func ipHeaderLen(v6 bool) int {
	if v6 {
		return 40
	}
	return 20
}
