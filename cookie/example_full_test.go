package cookie_test

import (
	"fmt"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// The full profile keeps a TS-less client's window scale and SACK in the
// ISN: the ACK alone brings them back.
func ExampleKey_CheckFull() {
	key, _ := cookie.ParseKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	t := cookie.Tuple{
		Client: netip.MustParseAddrPort("192.0.2.1:12345"),
		Server: netip.MustParseAddrPort("198.51.100.7:80"),
	}
	// SYN: seq 1000, MSS 1460, window scale 7, SACK-permitted, no timestamps.
	syn := cookie.FullOptions{MSS: 1460, WScale: 7, HasWScale: true, SACK: true}
	isn, _, _ := key.EncodeFull(t, 1000, syn, 5, 0)
	fmt.Printf("SYN-ACK seq: %#08x\n", isn)

	// ACK without timestamps, one slot later.
	v, _ := key.CheckFull(t, 1000, isn, 6, 0, false)
	fmt.Printf("valid=%v mss=%d wscale=%d sack=%v, made in slot %d\n", v.Valid, v.Options.MSS, v.Options.WScale, v.Options.SACK, v.Count)

	// Any other ISN fails the MAC.
	v, _ = key.CheckFull(t, 1000, isn^1<<20, 6, 0, false)
	fmt.Println("tampered:", v.Reason)
	// Output:
	// SYN-ACK seq: 0xbe7f494d
	// valid=true mss=1460 wscale=7 sack=true, made in slot 5
	// tampered: mac
}
