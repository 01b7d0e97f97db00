package afpacket_test

import (
	"fmt"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/afpacket"
)

// Open needs the interface the clients arrive on and the protected port;
// the rest has defaults (one worker, 16 blocks of 256 KiB, 1 ms block
// timeout, a 512-slot transmit ring).
func ExampleOpen() {
	_, err := afpacket.Open(&afpacket.Config{Port: 8080})
	fmt.Println(err)
	// Output: afpacket: an interface is needed
}

// With Proven, the sources of connections handed over (Driver.Prove) are
// received on one more queue, the last; the maps hold 65536 sources a
// family by default, for 10 minutes after their last proof.
func ExampleProven() {
	p := &driver.Proven{Timeout: 5 * time.Minute}
	_, err := afpacket.Open(&afpacket.Config{Interface: "eth0", Proven: p})
	fmt.Println(err, driver.DefaultProvenSize, driver.DefaultProvenTimeout)
	// Output: afpacket: a port is needed 65536 10m0s
}
