package handoff_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
)

// synProxy is the responder run as a loop: it answers every SYN to the
// port, and hands every ACK that completes one of its handshakes to
// handoff, called inside the server namespace. It stops when ctx ends.
type synProxy struct {
	handed  atomic.Int64
	refused atomic.Int64
	errs    chan error
	done    chan struct{}
}

func runSynProxy(ctx context.Context, t *testing.T, n *testNet, hand func(*handoff.Handshake) error) *synProxy {
	tp := openTap(t, n.srv, "veth0")
	p := &synProxy{errs: make(chan error, 100), done: make(chan struct{})}
	type pending struct{ syn, synack seg }
	go func() {
		defer close(p.done)
		open := map[netip.AddrPort]pending{}
		for ctx.Err() == nil {
			s, err := tp.next(100*time.Millisecond, func(s seg) bool { return s.dst.Port() == port })
			if errors.Is(err, errTimeout) {
				continue
			}
			if err != nil {
				p.errs <- err
				return
			}
			switch {
			case s.flags&(syn|ack) == syn:
				pd, ok := open[s.src]
				if !ok || pd.syn.seq != s.seq {
					pd = pending{syn: s}
					pd.synack = seg{src: s.dst, dst: s.src, seq: rand.Uint32(), ack: s.seq + 1, flags: syn | ack,
						mss: 1460, ws: -1, sackOK: s.sackOK}
					if s.ws >= 0 {
						pd.synack.ws = 7
					}
					if s.ts {
						pd.synack.ts, pd.synack.tsval, pd.synack.tsecr = true, monoMS(), s.tsval
					}
					open[s.src] = pd
				}
				if err := send(n.srv, pd.synack); err != nil {
					p.errs <- err
				}
			case s.flags&(syn|ack|rst) == ack:
				pd, ok := open[s.src]
				if !ok || s.ack != pd.synack.seq+1 {
					continue // a stray (an ACK of an already handed-off connection)
				}
				delete(open, s.src)
				h := handshakeOf(pd.syn, pd.synack, s)
				if err := n.srv.Do(func() error { return hand(&h) }); err != nil {
					if errors.Is(err, handoff.ErrRefused) {
						// At a limit: the client's retransmission tries again.
						open[s.src] = pd
						p.refused.Add(1)
						continue
					}
					p.errs <- fmt.Errorf("handoff %v: %w", s.src, err)
					continue
				}
				p.handed.Add(1)
			}
		}
	}()
	return p
}

func (p *synProxy) check(t *testing.T) {
	t.Helper()
	for {
		select {
		case err := <-p.errs:
			t.Error(err)
		default:
			return
		}
	}
}

// httpClient fetches from inside the client namespace, a new connection per
// request.
func httpClient(ns *netlab.NS) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: ns.DialContext, DisableKeepAlives: true}}
}

func needCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("SKIPPED LOUDLY: curl is not installed (scripts/test-deps.sh installs it)")
	}
}

// TestListenerHTTP: a Go HTTP server serves on a handoff.Listener; Go's
// net/http and curl in the client namespace fetch pages over IPv4 and IPv6,
// every connection materialised.
func TestListenerHTTP(t *testing.T) {
	needCurl(t)
	n := newTestNet(t)
	l := handoff.NewListener(&net.TCPAddr{IP: n.srv4.AsSlice(), Port: port}, 16, &handoff.Config{Mark: mark})
	defer l.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s via %s\n", r.RemoteAddr, r.Host)
	})}
	go srv.Serve(l)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	p := runSynProxy(ctx, t, n, l.Handoff)
	defer func() { cancel(); <-p.done; p.check(t) }()

	hc := httpClient(n.cli)
	const requests = 20
	for i := range requests {
		host := "10.99.1.2"
		if i%2 == 1 {
			host = "[fd00:99:1::2]"
		}
		resp, err := hc.Get(fmt.Sprintf("http://%s:%d/go/%d", host, port, i))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.HasPrefix(string(body), "hello ") || !strings.Contains(string(body), host) {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	for _, url := range []string{"http://10.99.1.2:8080/curl", "http://[fd00:99:1::2]:8080/curl"} {
		out, err := n.cli.CombinedOutput(context.Background(), "curl", "-sS", "--max-time", "10", url)
		if err != nil || !strings.HasPrefix(string(out), "hello ") {
			t.Errorf("curl %s: %v\n%s", url, err, out)
		}
	}
	// The responder counts a handoff after Handoff returns, which can be
	// after the client already has its answer: stop it before counting.
	cancel()
	<-p.done
	if got := p.handed.Load(); got != requests+2 {
		t.Errorf("%d connections handed over, want %d", got, requests+2)
	}
}

// TestProxy: connections handed to a Proxy are spliced to a backend in the
// server namespace. The backend reads the PROXY protocol v2 header and
// reports the addresses it names; 10 MB go up, the client half-closes, and
// the backend answers with the checksum of what it received after the
// client's FIN (the half-close passed through).
func TestProxy(t *testing.T) {
	n := newTestNet(t)
	backend, err := n.srv.Listen("tcp", "127.0.0.1:8081")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(c)
				hdr, err := br.Peek(16)
				if err != nil {
					return
				}
				all, err := br.Peek(16 + int(hdr[14])<<8 + int(hdr[15]))
				if err != nil {
					return
				}
				cl, sv, hn, err := handoff.ParseProxyHeader(all)
				if err != nil {
					fmt.Fprintf(c, "bad header: %v\n", err)
					return
				}
				br.Discard(hn)
				fmt.Fprintf(c, "client=%v server=%v\n", cl, sv)
				h := sha256.New()
				io.Copy(h, br)
				fmt.Fprintf(c, "sha256=%x\n", h.Sum(nil))
			}()
		}
	}()

	var spliceErrs atomic.Int64
	px := &handoff.Proxy{Backend: "127.0.0.1:8081", ProxyProtocol: true, Config: &handoff.Config{Mark: mark},
		Dial:    n.srv.DialContext,
		OnError: func(c netip.AddrPort, err error) { spliceErrs.Add(1); t.Logf("splice %v: %v", c, err) }}
	ctx, cancel := context.WithCancel(context.Background())
	p := runSynProxy(ctx, t, n, px.Handoff)
	defer func() { cancel(); <-p.done; p.check(t) }()

	var wg sync.WaitGroup
	for i, server := range []netip.Addr{n.srv4, n.srv6} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			c, err := n.cli.DialContext(dctx, "tcp", netip.AddrPortFrom(server, port).String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			up := stream(uint64(10+i), transferSize)
			go func() { c.Write(up); c.(*net.TCPConn).CloseWrite() }()
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			want := fmt.Sprintf("client=%v server=%v\n", c.LocalAddr(), netip.AddrPortFrom(server, port))
			if err != nil || line != want {
				t.Errorf("backend saw %q, %v; want %q", line, err, want)
			}
			line, err = br.ReadString('\n')
			sum := sha256.Sum256(up)
			if want := "sha256=" + hex.EncodeToString(sum[:]) + "\n"; err != nil || line != want {
				t.Errorf("backend checksum %q, %v; want %q", line, err, want)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Errorf("after the answer: %q, %v; want a clean EOF", rest, err)
			}
		}()
	}
	wg.Wait()
	if err := px.Close(); err != nil {
		t.Error(err)
	}
	if spliceErrs.Load() != 0 {
		t.Errorf("%d splice errors", spliceErrs.Load())
	}
	if err := px.Handoff(&handoff.Handshake{}); !errors.Is(err, handoff.ErrClosed) {
		t.Errorf("Handoff after Close: %v", err)
	}
}
