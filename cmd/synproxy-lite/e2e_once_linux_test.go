package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// One handshake makes one connection. Segments of a handed-over connection
// can pass the cookie check long after the handshake: when the client has
// sent as many bytes as it received (an echo, or no data at all), its
// sequence and acknowledgement numbers are the handshake ACK's shifted by
// the same amount, which the cookie's MSS index absorbs. Such a segment
// must go to the connection's socket, and once that socket is gone it must
// not make another one. Addresses 10.99.60.0-10.99.69.255 and
// fd00:99:60::/64.. belong to these tests.

// echoBackend echoes what it reads and closes once the client has
// finished; it counts the connections it accepted.
type echoBackend struct{ accepted atomic.Int64 }

func startEcho(t *testing.T, ln net.Listener) *echoBackend {
	b := &echoBackend{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				io.Copy(c, c)
			}()
		}
	}()
	return b
}

// idleConversation dials addr from namespace ns, exchanges msg with the
// echo backend (nothing when msg is empty), stays idle for idle and closes.
// It returns the client's local address.
func idleConversation(ns, addr string, msg []byte, idle time.Duration) (string, error) {
	var c net.Conn
	if err := inNS(nil, ns, func() (err error) { c, err = net.DialTimeout("tcp", addr, 10*time.Second); return }); err != nil {
		return "", fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	c.SetDeadline(time.Now().Add(idle + 20*time.Second))
	if len(msg) > 0 {
		if _, err := c.Write(msg); err != nil {
			return local, fmt.Errorf("write via %s: %w", addr, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			return local, fmt.Errorf("echo via %s: %q, %v", addr, got, err)
		}
	}
	time.Sleep(idle)
	// Close our side and wait for the proxy's end of the connection, so
	// the last segments of the connection have all been sent.
	c.(*net.TCPConn).CloseWrite()
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return local, fmt.Errorf("end via %s: %d bytes, %v; want EOF", addr, n, err)
	}
	return local, nil
}

// socketsOf lists the sockets of namespace ns whose peer is the client
// address client (ss's peer column).
func socketsOf(t *testing.T, ns, client string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(sh(t, "ip", "netns", "exec", ns, "ss", "-tanH"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[4] == client {
			out = append(out, line)
		}
	}
	return out
}

func invalidCookies(m map[string]float64) float64 {
	n := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "synproxy_lite_cookie_invalid_total") {
			n += v
		}
	}
	return n
}

// TestE2EOneConnectionPerHandshake: echo and zero-data connections that
// idle past the engine's short memory of handed-over connections (5 s)
// and then close make one backend connection each, leave no socket in the
// proxy namespace and move neither the invalid-cookie nor the
// failed-handoff counter, over both drivers.
func TestE2EOneConnectionPerHandshake(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	for i, drv := range []string{"nfqueue", "afpacket", "afxdp"} {
		t.Run(drv, func(t *testing.T) {
			l := newLab(t, 60+i, false)
			echo := startEcho(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
			metrics := l.proxyIP + ":9100"
			args := []string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--workers", "1",
				"--queue", fmt.Sprint(600 + i), "--metrics", metrics}
			switch drv {
			case "afpacket":
				args = afpacketArgs(l, 1, "--metrics", metrics)
			case "afxdp":
				args = afxdpArgs(l, "--metrics", metrics)
			}
			startDaemon(t, l.proxy, args...)
			before := scrape(t, l.proxy, metrics)

			type conv struct {
				addr  string
				msg   []byte
				local string
				err   error
			}
			echoMsg := []byte(strings.Repeat("echo me ", 64))
			convs := []*conv{
				{addr: l.proxyIP + ":8080", msg: echoMsg},
				{addr: l.proxyIP + ":8080"},
				{addr: "[" + l.proxy6 + "]:8080", msg: echoMsg},
				{addr: "[" + l.proxy6 + "]:8080"},
			}
			var wg sync.WaitGroup
			for _, c := range convs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.local, c.err = idleConversation(l.client, c.addr, c.msg, 7*time.Second)
				}()
			}
			wg.Wait()
			for _, c := range convs {
				if c.err != nil {
					t.Errorf("%s (%d bytes): %v", c.addr, len(c.msg), c.err)
				}
			}
			// A second connection would be made by the client's last
			// ACK, right after the close; give it time to show.
			time.Sleep(2 * time.Second)
			after := scrapeDrained(t, l.proxy, metrics)
			if got := echo.accepted.Load(); got != int64(len(convs)) {
				t.Errorf("the backend accepted %d connections for %d handshakes", got, len(convs))
			}
			for _, c := range convs {
				if c.local == "" {
					continue
				}
				if s := socketsOf(t, l.proxy, c.local); len(s) != 0 {
					t.Errorf("sockets left in the proxy namespace for %s:\n%s", c.local, strings.Join(s, "\n"))
				}
			}
			delta := func(k string) float64 { return after[k] - before[k] }
			if d := invalidCookies(after) - invalidCookies(before); d != 0 {
				t.Errorf("the invalid-cookie counter moved by %v", d)
			}
			if d := delta("synproxy_lite_handoff_failed_total"); d != 0 {
				t.Errorf("%v handoffs failed", d)
			}
			if d := delta("synproxy_lite_handed_over_total"); d != float64(len(convs)) {
				t.Errorf("%v connections handed over, want %d", d, len(convs))
			}
			t.Logf("valid cookies %v, handed over %v, retransmitted %v, established %v, invalid %v, failed %v",
				delta("synproxy_lite_cookie_valid_total"), delta("synproxy_lite_handed_over_total"),
				delta("synproxy_lite_cookie_retrans_total"), delta("synproxy_lite_established_total"), invalidCookies(after)-invalidCookies(before),
				delta("synproxy_lite_handoff_failed_total"))
		})
	}
}
