// Command parity-init is the /init of the kernel parity harness's qemu guest
// (see package fuzz/internal/guest). It is built statically by the host
// side of the harness; running it anywhere else powers nothing off but
// fails at once.
package main

import (
	"os"

	"github.com/synproxy-lite/synproxy-lite/fuzz/internal/guest"
)

func main() {
	if os.Getpid() != 1 {
		os.Stderr.WriteString("parity-init: must run as /init (pid 1) of the parity guest\n")
		os.Exit(2)
	}
	if err := guest.Main(); err != nil {
		os.Exit(1)
	}
}
