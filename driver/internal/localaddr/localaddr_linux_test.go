package localaddr

import (
	"net/netip"
	"sync/atomic"
	"testing"
)

// TestWatchLoopback checks that the first dump holds the loopback
// addresses, which every network namespace has while lo is up, and that the
// change callback sees it.
func TestWatchLoopback(t *testing.T) {
	var first atomic.Pointer[Set]
	w, err := New(func(s *Set) { first.CompareAndSwap(nil, s) })
	if err != nil {
		t.Skipf("LOCAL ADDRESSES NOT CHECKED: %v", err)
	}
	defer w.Close()
	if first.Load() == nil {
		t.Fatal("the change callback did not see the first snapshot")
	}
	if !w.Load().Has(netip.MustParseAddr("127.0.0.1")) {
		t.Skip("LOCAL ADDRESSES NOT CHECKED: 127.0.0.1 is not local here (lo down?)")
	}
	if w.Load().Has(netip.MustParseAddr("10.99.255.254")) {
		t.Error("10.99.255.254 taken for a local address")
	}
}
