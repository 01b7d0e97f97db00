package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestE2EAfpacketProvenClients is TestE2EProvenClients on afpacket: a
// client that completed a handshake is proven to the driver, and while a
// flood from other sources saturates the workers' ring, its packets go to
// the ring of proven clients (a packet socket outside the fanout group):
// every request succeeds, that ring drops nothing, and it carries at least
// a SYN and an ACK of each request. Addresses 10.99.176.0/24 (spoofed
// sources 10.99.177.0/24).
func TestE2EAfpacketProvenClients(t *testing.T) {
	l := newLab(t, 176, true)
	src := spoofed(t, l)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	dm := startDaemon(t, l.proxy, policyArgs(l, "afpacket", "--metrics", metrics, "--proven-clients", "--reflect-rate", "0")...)
	get := func(what string) {
		t.Helper()
		if out, err := curl(t, l.client, "http://"+l.proxyIP+":8080/small"); err != nil || out != "hello from the backend\n" {
			t.Fatalf("%s: %v %q", what, err, out)
		}
	}
	get("the first request")
	// The driver learns the source as the first connection is handed
	// over; the next connection's packets take the proven ring.
	eventually(t, "the client's packets on the proven ring", func() bool {
		get("a request before the flood")
		return scrape(t, l.proxy, metrics)["synproxy_lite_proven_packets_total"] > 0
	})
	before := scrape(t, l.proxy, metrics)["synproxy_lite_proven_packets_total"]
	stop := backgroundFlood(t, l, synFlood(t, l, src), 10_000_000, 200_000)
	const n = 20
	for i := range n {
		get(fmt.Sprintf("request %d during the flood", i))
	}
	stop()
	// The kernel's counts since the last scrape (the daemon reads and so
	// resets them when it is scraped): the flood and the requests. The
	// client's packets are all in by now: its requests were answered.
	packets, drops := provenRingStats(t, dm.cmd.Process.Pid)
	m := scrapeDrained(t, l.proxy, metrics)
	t.Logf("during the flood: %v SYNs taken, %v overruns of the workers' ring; the proven client's %v packets on its own ring (%d counted by the kernel, %d dropped there)",
		m["synproxy_lite_syn_received_total"], m["synproxy_lite_rx_overruns_total"], m["synproxy_lite_proven_packets_total"]-before, packets, drops)
	if drops != 0 {
		t.Errorf("the proven clients' ring dropped %d packets, want 0", drops)
	}
	if got := m["synproxy_lite_proven_packets_total"] - before; got < 2*n {
		t.Errorf("%v packets of the proven client on its ring, want at least a SYN and an ACK of each of %d requests", got, n)
	}
}

// provenRingStats returns the kernel's statistics (PACKET_STATISTICS:
// packets, drops) of the receive ring of process pid that is in no fanout
// group: afpacket's ring of proven clients. It reads them on a copy of the
// socket (pidfd_getfd). They count from the daemon's last read, at its
// last scrape; reading them resets them, and the daemon's count of overruns
// misses what was read here.
func provenRingStats(t *testing.T, pid int) (packets, drops uint32) {
	t.Helper()
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "ip" {
		// ip netns exec forked instead of exec'ing the daemon.
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); len(f) == 1 {
			pid, _ = strconv.Atoi(f[0])
		}
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(pidfd)
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range ents {
		if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); !strings.HasPrefix(link, "socket:") {
			continue
		}
		target, _ := strconv.Atoi(e.Name())
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			continue // closed meanwhile
		}
		func() {
			defer unix.Close(fd)
			if dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || dom != unix.AF_PACKET {
				return
			}
			if v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION); err != nil || v != unix.TPACKET_V3 {
				return // a transmit socket
			}
			if f, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT); err != nil || f != 0 {
				return // a worker's
			}
			st, err := unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
			if err != nil {
				t.Fatalf("PACKET_STATISTICS: %v", err)
			}
			packets, drops = st.Packets, st.Drops
			found++
		}()
	}
	if found != 1 {
		t.Fatalf("%d receive rings outside a fanout group in process %d, want the proven clients' one", found, pid)
	}
	return packets, drops
}
