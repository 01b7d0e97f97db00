package sdnotify_test

import (
	"fmt"

	"github.com/synproxy-lite/synproxy-lite/internal/sdnotify"
)

func Example() {
	// Once the daemon serves; outside systemd nothing is sent.
	sent, err := sdnotify.Notify(sdnotify.Ready, sdnotify.Status("serving port 443"))
	fmt.Println(sent, err)
	// Output: false <nil>
}
