package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The end-to-end tests build a lab of network namespaces joined by veth
// pairs, run the daemon (this test binary re-executed, see TestMain) in the
// proxy namespace in front of a real HTTP server, and drive real clients
// (curl and Go's net/http) from the client namespace.

const daemonEnv = "SYNPROXY_LITE_E2E_DAEMON"

func TestMain(m *testing.M) {
	if args := os.Getenv(daemonEnv); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, append([]string{"run"}, strings.Fields(args)...), os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func needLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: end-to-end tests need root (network namespaces, nftables, NFQUEUE, TCP_REPAIR)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED LOUDLY: %s is not installed (scripts/test-deps.sh installs it)", tool)
		}
	}
}

// lab is a client and a proxy namespace (and an attacker namespace when
// asked) on one /24 and one /64.
type lab struct {
	t                     *testing.T
	client, proxy, attack string
	clientIP, proxyIP     string
	client6, proxy6       string
	attackIP              string
	net4                  int // third octet
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLab(t *testing.T, octet int, attacker bool) *lab {
	t.Helper()
	needLab(t)
	var b [2]byte
	rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	l := &lab{t: t, net4: octet,
		client: "splc" + sfx + "c", proxy: "splc" + sfx + "p",
		clientIP: fmt.Sprintf("10.99.%d.1", octet), proxyIP: fmt.Sprintf("10.99.%d.2", octet),
		client6: fmt.Sprintf("fd00:99:%d::1", octet), proxy6: fmt.Sprintf("fd00:99:%d::2", octet)}
	nss := []string{l.client, l.proxy}
	if attacker {
		l.attack = "splc" + sfx + "a"
		l.attackIP = fmt.Sprintf("10.99.%d.3", octet)
		nss = append(nss, l.attack)
	}
	for _, ns := range nss {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// A bridge in the proxy namespace joins the client and attacker links.
	sh(t, "ip", "-n", l.proxy, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", l.proxy, "addr", "add", l.proxyIP+"/24", "dev", "br0")
	sh(t, "ip", "-n", l.proxy, "addr", "add", l.proxy6+"/64", "dev", "br0", "nodad")
	sh(t, "ip", "-n", l.proxy, "link", "set", "br0", "up")
	link := func(ns, ip4, ip6, tag string) {
		a, p := "spl"+sfx+tag+"0", "spl"+sfx+tag+"1"
		sh(t, "ip", "link", "add", a, "netns", ns, "type", "veth", "peer", "name", p, "netns", l.proxy)
		sh(t, "ip", "-n", ns, "addr", "add", ip4+"/24", "dev", a)
		if ip6 != "" {
			sh(t, "ip", "-n", ns, "addr", "add", ip6+"/64", "dev", a, "nodad")
		}
		sh(t, "ip", "-n", ns, "link", "set", a, "up")
		sh(t, "ip", "-n", l.proxy, "link", "set", p, "master", "br0", "up")
	}
	link(l.client, l.clientIP, l.client6, "c")
	if attacker {
		link(l.attack, l.attackIP, "", "a")
	}
	return l
}

// inNS runs f on a thread switched into namespace ns: sockets f creates
// live in ns.
func inNS(t testing.TB, ns string, f func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(orig)
	target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with the goroutine.
		return fmt.Errorf("restoring the namespace: %v", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNS(t, ns, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func dialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		e := inNS(nil, ns, func() error { c, err = d.DialContext(ctx, network, addr); return nil })
		if e != nil {
			return nil, e
		}
		return c, err
	}
}

// backend is the real HTTP server behind the proxy:
//
//	GET /small     a short page
//	GET /bytes?n=N N deterministic bytes; X-Sum: their SHA-256 in a trailer-free header
//	POST /sum      replies with the SHA-256 of the body
func startBackend(t *testing.T, ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from the backend\n") })
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.Copy(w, io.LimitReader(&detReader{}, n))
	})
	mux.HandleFunc("/sum", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// detReader yields a fixed pseudo-random byte stream.
type detReader struct{ off int }

var detBlock = func() []byte {
	b := make([]byte, 1<<16)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

func (d *detReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], detBlock[d.off:])
		n += c
		d.off = (d.off + c) % len(detBlock)
	}
	return n, nil
}

func detSum(n int64) string {
	h := sha256.New()
	io.Copy(h, io.LimitReader(&detReader{}, n))
	return hex.EncodeToString(h.Sum(nil))
}

// daemonProc is a running synproxy-lite.
type daemonProc struct {
	cmd *exec.Cmd
	out *syncBuf
	ns  string
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startDaemon(t *testing.T, ns string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	cmd.Env = append(os.Environ(), daemonEnv+"="+strings.Join(args, " "))
	d := &daemonProc{cmd: cmd, out: &syncBuf{}, ns: ns}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("daemon output:\n%s", d.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.out.String(), "proxy running") {
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			t.Fatalf("daemon did not start:\n%s", d.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

func (d *daemonProc) stop() {
	if d.cmd.Process != nil && d.cmd.ProcessState == nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			d.cmd.Process.Kill()
			<-done
		}
	}
}

// metrics scrapes the daemon's counters.
func scrape(t *testing.T, ns, addr string) map[string]float64 {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: dialIn(ns)}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, _ := strconv.ParseFloat(line[i+1:], 64)
		m[line[:i]] = v
	}
	return m
}

func httpClient(ns string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: dialIn(ns), DisableKeepAlives: true},
		Timeout: 60 * time.Second}
}

func curl(t *testing.T, ns string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "curl", "-sS", "--max-time", "20"}, args...)...).CombinedOutput()
	return string(out), err
}

// transfer moves n bytes each way through the proxy and checks the sums.
func transfer(t *testing.T, c *http.Client, base string, n int64) {
	t.Helper()
	resp, err := c.Get(fmt.Sprintf("%s/bytes?n=%d", base, n))
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || got != n {
		t.Fatalf("download: %d of %d bytes, %v", got, n, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != detSum(n) {
		t.Fatalf("download checksum %s, want %s", sum, detSum(n))
	}
	resp, err = c.Post(base+"/sum", "application/octet-stream", io.LimitReader(&detReader{}, n))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %s", n, detSum(n)); string(body) != want {
		t.Fatalf("upload: backend saw %q, want %q", body, want)
	}
}

func TestE2ECurlAndGo(t *testing.T) {
	l := newLab(t, 10, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	startDaemon(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8081", "--workers", "2", "--queue", "110",
		"--metrics", metrics)
	for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
		out, err := curl(t, l.client, "-g", "http://"+host+":8080/small")
		if err != nil || out != "hello from the backend\n" {
			t.Fatalf("curl via %s: %v %q", host, err, out)
		}
	}
	c := httpClient(l.client)
	for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
		transfer(t, c, "http://"+host+":8080", 100<<20)
	}
	m := scrape(t, l.proxy, metrics)
	// curl ×2 plus two connections per transfer.
	if m["synproxy_lite_handed_over_total"] < 6 || m["synproxy_lite_cookie_valid_total"] < 6 {
		t.Errorf("metrics: %v", m)
	}
	if m["synproxy_lite_handoff_failed_total"] != 0 {
		t.Errorf("handoffs failed: %v", m["synproxy_lite_handoff_failed_total"])
	}
	// Only handshakes went through userspace, not the 400 MB.
	if m["synproxy_lite_packets_total"] > 100 {
		t.Errorf("%v packets went through the queue; connections are not reaching their sockets directly",
			m["synproxy_lite_packets_total"])
	}
}
