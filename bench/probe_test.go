//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSupports checks the driver probe against binaries whose run usage
// lists the drivers in different words.
func TestSupports(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, usage string
		want        bool
	}{
		{"without", `  -driver string\n    \tpacket I/O driver: nfqueue or afpacket (default \"nfqueue\")`, false},
		{"last", `  -driver string\n    \tpacket I/O driver: nfqueue or afpacket or afxdp (default \"nfqueue\")`, true},
		{"list", `  -driver string\n    \tpacket I/O driver: auto, afxdp, afpacket or nfqueue (default \"auto\")`, true},
		{"gnu", `  --driver VALUE    packet I/O driver: nfqueue, afpacket, afxdp, or auto (default auto)`, true},
		{"gnu-without", `  --driver VALUE    packet I/O driver: nfqueue or afpacket (default nfqueue)\n  --interface NAME  (--driver afpacket or afxdp)`, false},
		{"elsewhere", `  -interface name\n    \tname of the interface (--driver afpacket); afxdp someday`, false},
	} {
		bin := filepath.Join(dir, c.name)
		if err := os.WriteFile(bin, []byte("#!/bin/sh\nprintf '"+c.usage+"\\n' >&2\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if got := supports(bin, "afxdp"); got != c.want {
			t.Errorf("%s: supports = %v, want %v", c.name, got, c.want)
		}
	}
}
