package cookie_test

import (
	"fmt"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// A SYN arrives; its SYN-ACK carries the cookie as ISN. The client's ACK
// brings it back in its acknowledgment number, and the check recovers the MSS.
func ExampleKey_Check() {
	key, _ := cookie.ParseKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	t := cookie.Tuple{
		Client: netip.MustParseAddrPort("192.0.2.1:12345"),
		Server: netip.MustParseAddrPort("198.51.100.7:80"),
	}
	const slot = 5 // the time slot; cookie.WallSlot(time.Now()) in a proxy

	// SYN: seq 1000, MSS 1460.
	isn, _ := key.Encode(t, 1000, 1460, slot)
	fmt.Println("SYN-ACK seq:", isn)

	// ACK: seq 1001, ack isn+1, one slot later.
	v, _ := key.Check(t, 1001-1, isn+1-1, slot+1)
	fmt.Printf("valid=%v mss=%d made in slot %d, age %d\n", v.Valid, v.MSS, v.Count, v.Age)

	// Two slots later it is stale.
	v, _ = key.Check(t, 1000, isn, slot+2)
	fmt.Println("two slots later:", v.Reason)
	// Output:
	// SYN-ACK seq: 4185536808
	// valid=true mss=1460 made in slot 5, age 1
	// two slots later: stale
}

// Trace shows the check's arithmetic: r = cookie - h0 - client ISN carries
// the slot's low byte on top, and the MSS index below once h1 of that slot is
// taken off.
func ExampleKey_Trace() {
	key, _ := cookie.ParseKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	t := cookie.Tuple{
		Client: netip.MustParseAddrPort("192.0.2.1:12345"),
		Server: netip.MustParseAddrPort("198.51.100.7:80"),
	}
	isn, _ := key.Encode(t, 1000, 1460, 5)

	tr, _ := key.Trace(t, 1000, isn, 6)
	fmt.Printf("r = %08x: made in a slot ending in %d, age %d\n", tr.R, tr.SlotByte(), tr.Age)
	fmt.Printf("index = (r - h1) mod 2^24 = %d: %v, MSS %d\n", tr.Index, tr.Verdict.Reason, tr.Verdict.MSS)
	// Output:
	// r = 0549cbc9: made in a slot ending in 5, age 1
	// index = (r - h1) mod 2^24 = 3: valid, MSS 1460
}

// The timestamp cookie keeps the options a cookie has no room for in the low
// 6 bits of the SYN-ACK's TSval; the client echoes them in its ACK's TSecr.
func ExampleTSval() {
	syn := cookie.TSOptions{WScale: 7, HasWScale: true, SACK: true}
	tsval := cookie.TSval(0x12345678, syn) // millisecond clock
	fmt.Printf("TSval %#x\n", tsval)

	ack := cookie.DecodeTSecr(tsval)
	fmt.Printf("wscale %d (present %v), SACK %v, ECN %v\n", ack.WScale, ack.HasWScale, ack.SACK, ack.ECN)
	// Output:
	// TSval 0x12345657
	// wscale 7 (present true), SACK true, ECN false
}
