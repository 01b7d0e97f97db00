package handoff_test

import "net/netip"

var zeroAP netip.AddrPort

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
