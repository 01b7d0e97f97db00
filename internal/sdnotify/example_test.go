package sdnotify_test

import (
	"fmt"
	"strings"

	"github.com/synproxy-lite/synproxy-lite/internal/sdnotify"
)

func Example() {
	// What the daemon says once it serves. Notify sends it, one datagram
	// to $NOTIFY_SOCKET, or nothing outside systemd:
	//
	//	sent, err := sdnotify.Notify(state...)
	state := []string{sdnotify.Ready, sdnotify.MainPID(4242), sdnotify.Status("serving port 443\n(pid 4242)")}
	fmt.Println(strings.Join(state, "\n"))
	// Output:
	// READY=1
	// MAINPID=4242
	// STATUS=serving port 443 (pid 4242)
}
