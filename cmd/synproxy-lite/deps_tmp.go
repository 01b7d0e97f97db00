//go:build tools

package main

// Temporary: pins the dependencies chosen in the design until the code imports them.
import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/dchest/siphash"
	_ "github.com/florianl/go-nfqueue/v2"
	_ "github.com/google/gopacket"
	_ "github.com/google/gopacket/layers"
	_ "github.com/google/gopacket/pcapgo"
	_ "github.com/google/nftables"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "golang.org/x/sys/unix"
	_ "gonum.org/v1/plot"
)
