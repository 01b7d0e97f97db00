package afxdp_test

import (
	"fmt"

	"github.com/synproxy-lite/synproxy-lite/driver/afxdp"
)

// Open needs the interface the clients arrive on and the protected port;
// the rest has defaults (every receive queue, 4096 frames per socket,
// native mode where the interface has it, else generic).
func ExampleOpen() {
	_, err := afxdp.Open(&afxdp.Config{Port: 8080})
	fmt.Println(err)
	// Output: afxdp: an interface is needed
}
