package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	nfq "github.com/florianl/go-nfqueue/v2"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// The cookie profiles end to end: a client with timestamps off fetches
// 4 MB through the proxy over a path with 40 ms of delay. Under the Linux
// profile its SYN-ACK can carry no window scale (the timestamp that would
// remember it is missing), so the client's window stays at 64 KB and the
// transfer takes about 4 MB / 64 KB = 64 round trips. Under the full profile
// the ISN remembers window scale and SACK, and the transfer is limited by
// slow start only: about a dozen round trips.

const (
	profileDelay = 40 * time.Millisecond
	profileBytes = 4 << 20
)

// addDelay delays every packet the client namespace of l sends to the
// proxy by profileDelay: with netem on the client's link when the kernel
// has sch_netem, else (loudly) with a delay line in this process, a
// netfilter queue in the client namespace whose verdicts wait profileDelay.
func addDelay(t *testing.T, l *lab, queue uint16) {
	t.Helper()
	exec.Command("modprobe", "sch_netem").Run()
	out, err := exec.Command("ip", "netns", "exec", l.client, "tc", "qdisc", "add", "dev", "vproxy", "root",
		"netem", "delay", profileDelay.String(), "limit", "10000").CombinedOutput()
	if err == nil {
		return
	}
	t.Logf("NOTE LOUDLY: netem is not available (%v: %s); the 40 ms delay is a userspace delay line "+
		"(a netfilter queue in the client namespace) instead", err, strings.TrimSpace(string(out)))
	var q *nfq.Nfqueue
	if err := inNS(t, l.client, func() (err error) {
		q, err = nfq.Open(&nfq.Config{NfQueue: queue, MaxQueueLen: 8192, Copymode: nfq.NfQnlCopyMeta,
			AfFamily: 2, WriteTimeout: time.Second})
		return err
	}); err != nil {
		t.Skipf("SKIPPED LOUDLY: neither netem nor a netfilter queue for a delay line: %v", err)
	}
	type held struct {
		id uint32
		at time.Time
	}
	ch := make(chan held, 8192)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case h := <-ch:
				time.Sleep(time.Until(h.at.Add(profileDelay)))
				q.SetVerdict(h.id, nfq.NfAccept)
			}
		}
	}()
	err = q.RegisterWithErrorFunc(ctx, func(a nfq.Attribute) int {
		if a.PacketID != nil {
			ch <- held{*a.PacketID, time.Now()}
		}
		return 0
	}, func(err error) int { return 0 })
	if err != nil {
		cancel()
		t.Skipf("SKIPPED LOUDLY: the delay line's queue: %v", err)
	}
	if err := inNS(t, l.client, func() error { return delayRule(queue) }); err != nil {
		cancel()
		t.Fatalf("the delay line's rule: %v", err)
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "exec", l.client, "nft", "delete", "table", "inet", "spl_delay").Run()
		cancel()
		<-done
		q.Close()
	})
}

// delayRule queues the namespace's IPv4 TCP packets to port 8080 to queue
// with the xtables NFQUEUE target through nft_compat (the target the daemon
// falls back to, which kernels without nft_queue have):
//
//	table inet spl_delay { chain out { type filter hook output priority 0;
//	    meta nfproto ipv4 meta l4proto tcp tcp dport 8080 queue num N } }
func delayRule(queue uint16) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	tb := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "spl_delay"})
	ch := c.AddChain(&nftables.Chain{Name: "out", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter})
	info := make(xt.Unknown, 6)
	binary.NativeEndian.PutUint16(info[0:], queue)
	binary.NativeEndian.PutUint16(info[2:], 1) // queues_total
	c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, 8080)},
		&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info},
	}})
	return c.Flush()
}

// tcpInfo is what ss -ti says of the handed-over socket.
type tcpInfo struct {
	wscale, sack, ts bool
	line             string
}

// fetch downloads profileBytes through the proxy on one connection from
// the client namespace, checks them, and returns the time from the request
// to the last byte and what ss -ti shows, in the proxy namespace, of the
// handed-over socket while the connection is still open.
func fetch(t *testing.T, l *lab) (time.Duration, tcpInfo) {
	t.Helper()
	c, err := dialIn(l.client)(context.Background(), "tcp", l.proxyIP+":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	start := time.Now()
	fmt.Fprintf(c, "GET /bytes?n=%d HTTP/1.1\r\nHost: proxy\r\n\r\n", profileBytes)
	br := bufio.NewReaderSize(c, 1<<16)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	took := time.Since(start)
	if err != nil || n != profileBytes {
		t.Fatalf("download: %d of %d bytes, %v", n, profileBytes, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != detSum(profileBytes) {
		t.Fatalf("download checksum %s, want %s", sum, detSum(profileBytes))
	}
	cport := c.LocalAddr().(*net.TCPAddr).Port
	// -o adds the options (ts, sack) to -i's output.
	out := sh(t, "ip", "netns", "exec", l.proxy, "ss", "-tinoH", "state", "established",
		fmt.Sprintf("( sport = :8080 and dport = :%d )", cport))
	info := tcpInfo{line: strings.Join(strings.Fields(out), " ")}
	for _, f := range strings.Fields(out) {
		switch {
		case strings.HasPrefix(f, "wscale:"):
			// wscale:0,0 is a socket without scaling (the handoff
			// always sets the window option, 0 without scaling).
			info.wscale = f != "wscale:0,0"
		case f == "sack":
			info.sack = true
		case f == "ts":
			info.ts = true
		}
	}
	if info.line == "" {
		t.Fatalf("ss shows no handed-over socket for client port %d", cport)
	}
	return took, info
}

// profileLab starts a lab, a backend and the daemon with the profile, the
// client's timestamps on or off, and the delay.
func profileLab(t *testing.T, octet int, profile string, ts bool) *lab {
	t.Helper()
	l := newLab(t, octet, false)
	if !ts {
		sh(t, "ip", "netns", "exec", l.client, "sysctl", "-qw", "net.ipv4.tcp_timestamps=0")
	}
	sh(t, "ip", "netns", "exec", l.client, "sysctl", "-qw", "net.ipv4.tcp_window_scaling=1")
	addDelay(t, l, uint16(390+octet%10))
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	startDaemon(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8081", "--workers", "1",
		"--queue", strconv.Itoa(300+octet%10), "--cookie-profile", profile)
	return l
}

// TestE2EProfileNoTimestamps is the acceptance test of the full profile:
// without the client's timestamps the Linux profile loses window scaling
// and SACK, the full profile keeps them, and the transfer is at least 4
// times faster (each profile's best of two fetches).
func TestE2EProfileNoTimestamps(t *testing.T) {
	best := map[string]time.Duration{}
	for i, profile := range []string{"linux", "full"} {
		l := profileLab(t, 150+i, profile, false)
		for range 2 {
			took, info := fetch(t, l)
			t.Logf("%s profile, no timestamps: %d bytes in %v (%.1f Mbit/s); ss: %s", profile, profileBytes, took,
				float64(profileBytes*8)/took.Seconds()/1e6, info.line)
			if info.ts {
				t.Errorf("%s: the socket has timestamps though the client has them off", profile)
			}
			want := profile == "full"
			if info.wscale != want || info.sack != want {
				t.Errorf("%s profile: wscale %v, sack %v; want %v for both", profile, info.wscale, info.sack, want)
			}
			if b, ok := best[profile]; !ok || took < b {
				best[profile] = took
			}
		}
	}
	if ratio := float64(best["linux"]) / float64(best["full"]); ratio < 4 {
		t.Errorf("the full profile is %.1fx faster than the Linux profile (%v vs %v), want at least 4x",
			ratio, best["full"], best["linux"])
	} else {
		t.Logf("the full profile is %.1fx faster (%v vs %v)", ratio, best["full"], best["linux"])
	}
}

// TestE2EProfileTimestamps: with the client's timestamps on, both profiles
// give the handed-over socket window scaling, SACK and timestamps.
func TestE2EProfileTimestamps(t *testing.T) {
	for i, profile := range []string{"linux", "full"} {
		l := profileLab(t, 152+i, profile, true)
		took, info := fetch(t, l)
		t.Logf("%s profile, timestamps: %d bytes in %v; ss: %s", profile, profileBytes, took, info.line)
		if !info.wscale || !info.sack || !info.ts {
			t.Errorf("%s profile: wscale %v, sack %v, ts %v; want all", profile, info.wscale, info.sack, info.ts)
		}
	}
}
