//go:build !js

package cookie_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// A Ring rotates its key: a cookie made just before a rotation is still
// accepted afterwards through the previous key. Fleet keys make every proxy
// that shares the master secret derive the same key for each epoch.
func ExampleRing() {
	now := time.Date(2026, 1, 1, 0, 4, 59, 0, time.UTC) // one second before a 5-minute epoch ends
	clock := func() time.Time { return now }
	master := make([]byte, cookie.FleetSecretSize) // from a secret file in practice
	fleet, _ := cookie.NewFleetSecret(master)

	a, _ := cookie.NewRing(&cookie.RingConfig{Now: clock, Rotate: 5 * time.Minute, Fleet: &fleet})
	b, _ := cookie.NewRing(&cookie.RingConfig{Now: clock, Rotate: 5 * time.Minute, Fleet: &fleet})
	t := cookie.Tuple{
		Client: netip.MustParseAddrPort("[2001:db8::1]:40000"),
		Server: netip.MustParseAddrPort("[2001:db8::2]:443"),
	}
	isn, _ := a.Encode(t, 123456789, 1440) // proxy a answers the SYN

	now = now.Add(10 * time.Second) // the key rotates; the ACK reaches proxy b
	v, _ := b.Check(t, 123456789, isn)
	fmt.Println("accepted by the other proxy after the rotation:", v.Valid, v.MSS)
	// Output:
	// accepted by the other proxy after the rotation: true 1440
}
