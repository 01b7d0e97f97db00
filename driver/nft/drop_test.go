package nft

import (
	"strings"
	"testing"
)

// TestInstallDrop installs the drop-mode ruleset of the AF_PACKET driver and
// has nft(8) list it back: every queue statement became a drop, the socket
// mark rule that lets handed-over connections through stays.
func TestInstallDrop(t *testing.T) {
	needRoot(t)
	ns, fd := netns(t)
	cfg := &Config{Port: 8443, Drop: true, FailOpen: true, NetNS: fd}
	text, err := Render(cfg, QueueNative)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "queue") || strings.Count(text, " drop\n") != 2 || strings.Contains(text, "dnat") {
		t.Errorf("rendered drop ruleset:\n%s", text)
	}
	r, err := Install(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := nftList(t, ns)
	for _, want := range []string{
		"tcp dport 8443 tcp flags syn / fin,syn,rst,ack counter packets 0 bytes 0 drop",
		"tcp dport 8443 socket mark 0x0053504c counter packets 0 bytes 0 accept",
		"tcp dport 8443 counter packets 0 bytes 0 drop",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, got)
		}
	}
	// FailOpen does not apply to drop mode: no conntrack, the chain
	// stays before it.
	if !strings.Contains(got, "priority raw;") || strings.Contains(got, "ct state") {
		t.Errorf("drop mode moved after conntrack:\n%s", got)
	}
	if strings.Contains(got, "queue") || strings.Contains(got, "NFQUEUE") {
		t.Errorf("drop mode installed a queue:\n%s", got)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
}
