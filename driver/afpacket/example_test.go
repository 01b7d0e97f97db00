package afpacket_test

import (
	"fmt"

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
