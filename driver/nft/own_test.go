package nft

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
)

// nftIn runs nft(8) with args in namespace ns.
func nftIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// deadOwner is the Owner of a process that has exited.
func deadOwner(t *testing.T) Owner {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o := ProcessOwner(cmd.Process.Pid)
	cmd.Wait()
	return o
}

// liveOwner is the Owner of a process that runs until the test ends.
func liveOwner(t *testing.T) Owner {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return ProcessOwner(cmd.Process.Pid)
}

// TestForeignTable: a table synproxy-lite did not create (the host
// firewall's inet filter) is neither replaced by Install nor deleted by
// Remove.
func TestForeignTable(t *testing.T) {
	needRoot(t)
	ns, fd := netns(t)
	nftIn(t, ns, "add", "table", "inet", "filter")
	nftIn(t, ns, "add", "chain", "inet", "filter", "input", "{ type filter hook input priority 0; policy accept; }")
	nftIn(t, ns, "add", "rule", "inet", "filter", "input", "tcp", "dport", "22", "accept")
	before := nftList(t, ns)
	cfg := &Config{Table: "filter", Port: 8443, QueueNum: 3, QueueTotal: 1, NetNS: fd}
	_, err := Install(cfg)
	if !errors.Is(err, ErrNotOwned) {
		t.Errorf("Install over inet filter: %v, want ErrNotOwned", err)
	}
	if err != nil && !strings.Contains(err.Error(), "inet filter") {
		t.Errorf("the error does not name the table: %v", err)
	}
	if _, err := Remove(cfg); !errors.Is(err, ErrNotOwned) {
		t.Errorf("Remove of inet filter: %v, want ErrNotOwned", err)
	}
	if _, err := Replace(cfg); !errors.Is(err, ErrNotOwned) {
		t.Errorf("Replace of inet filter: %v, want ErrNotOwned", err)
	}
	if after := nftList(t, ns); after != before {
		t.Errorf("the foreign table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Nor does the queue probe touch a table of the probe's name.
	nftIn(t, ns, "add", "table", "inet", "filter_probe")
	if _, err := ProbeQueue(cfg); err != nil {
		t.Fatal(err)
	}
	if got := nftList(t, ns); !strings.Contains(got, "table inet filter_probe") {
		t.Errorf("the queue probe deleted inet filter_probe:\n%s", got)
	}
}

// TestOwners: Install marks its table with its owner, refuses a table a
// live other process owns, replaces one whose owner is gone (or that is
// its own, or its parent's in a graceful restart), and Remove deletes only
// a table of its own.
func TestOwners(t *testing.T) {
	needRoot(t)
	ns, fd := netns(t)
	cfg := &Config{Port: 8443, QueueNum: 3, QueueTotal: 1, NetNS: fd}
	other := *cfg
	other.owner = liveOwner(t)
	if _, err := Install(&other); err != nil {
		t.Fatal(err)
	}
	got := nftList(t, ns)
	if !strings.Contains(got, `comment "`+other.owner.String()+`"`) {
		t.Errorf("the table does not carry its owner %q:\n%s", other.owner, got)
	}
	if _, err := Install(cfg); !errors.Is(err, ErrInUse) {
		t.Errorf("Install over a live owner's table: %v, want ErrInUse", err)
	}
	if _, err := Remove(cfg); !errors.Is(err, ErrInUse) {
		t.Errorf("Remove of a live owner's table: %v, want ErrInUse", err)
	}
	if o, err := TableOwner(cfg); err != nil || o != other.owner {
		t.Errorf("TableOwner = %v, %v; want %v", o, err, other.owner)
	}
	// The process a graceful restart started may replace its parent's.
	heir := *cfg
	heir.Inherit = other.owner.PID
	r, err := Install(&heir)
	if err != nil || !r.Stale {
		t.Fatalf("Install of the heir: %v, %+v", err, r)
	}
	if o, _ := TableOwner(cfg); o != Self() {
		t.Errorf("owner after the heir's install: %v, want %v", o, Self())
	}

	// A dead owner's table is stale: replaced.
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	dead := *cfg
	dead.owner = deadOwner(t)
	if _, err := Install(&dead); err != nil {
		t.Fatal(err)
	}
	r, err = Install(cfg)
	if err != nil || !r.Stale {
		t.Fatalf("Install over a dead owner's table: %v, %+v", err, r)
	}
	if n := strings.Count(nftList(t, ns), "table inet synproxy_lite {"); n != 1 {
		t.Errorf("%d tables, want 1", n)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := nftList(t, ns); strings.Contains(got, "synproxy_lite") {
		t.Errorf("table left after Remove:\n%s", got)
	}
}

// TestOwnSocketsSkipped: a connection the daemon makes itself (a socket
// with the mark) to the protected port on this host is not queued. The
// queue here has no listener and no bypass, so a queued SYN is dropped.
func TestOwnSocketsSkipped(t *testing.T) {
	needRoot(t)
	for _, drop := range []bool{false, true} {
		ns, fd := netns(t)
		exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").Run()
		cfg := &Config{Port: 8443, QueueNum: 7, QueueTotal: 1, NetNS: fd, Drop: drop}
		r, err := Install(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := nftList(t, ns); !strings.Contains(got, "meta mark 0x0053504c") {
			t.Errorf("drop %v: no rule for the daemon's own packets:\n%s", drop, got)
		}
		err = netlab.DoNamed(ns, func() error {
			ln, err := net.Listen("tcp", "127.0.0.1:8443")
			if err != nil {
				return err
			}
			defer ln.Close()
			d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, DefaultMark) })
				return serr
			}}
			c, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:8443")
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err != nil {
			t.Errorf("drop %v: a marked connection to the protected port: %v", drop, err)
		}
		r.Remove()
	}
}

// TestReplaceOwned: Replace puts the rules in place of the process's own
// table (one table, one set of chains) and marks it with this process.
func TestReplaceOwned(t *testing.T) {
	needRoot(t)
	ns, fd := netns(t)
	cfg := &Config{Port: 8443, QueueNum: 3, QueueTotal: 1, NetNS: fd}
	if _, err := Install(cfg); err != nil {
		t.Fatal(err)
	}
	moved := *cfg
	moved.QueueNum = 4
	r, err := Replace(&moved)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := TableOwner(&moved); err != nil || o != Self() {
		t.Errorf("owner after Replace: %v, %v; want %v", o, err, Self())
	}
	if got := nftList(t, ns); strings.Count(got, "chain prerouting") != 1 || strings.Count(got, "chain owner") != 1 {
		t.Errorf("rules after Replace:\n%s", got)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
}
