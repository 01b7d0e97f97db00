package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// childEnv makes the test binary the server: it runs proxy.Listen in the
// namespace it was started in (the engine's workers create the sockets on
// threads of their own, so the whole process must be in that namespace).
const childEnv = "SPL_PROXY_TEST_SERVER"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		os.Exit(serverMain(v))
	}
	if v := os.Getenv(restartCheckEnv); v != "" {
		os.Exit(restartCheckMain(v))
	}
	os.Exit(m.Run())
}

// report is what the server prints when it has closed its Listener.
type report struct {
	SYNReceived, CookieValid, HandedOver, HandoffFailed uint64
	CloseErr                                            string
}

// serverMain serves HTTP on proxy.Listen until its standard input ends,
// then closes the Listener and prints a report.
func serverMain(arg string) int {
	port, table, _ := strings.Cut(arg, ",")
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ln, err := proxy.Listen(context.Background(), &proxy.Config{Port: uint16(p), Table: table,
		Workers: 2, Queue: 30, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 1
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "remote=%s local=%s body=%d sha=%x\n", r.RemoteAddr,
				r.Context().Value(http.LocalAddrContextKey), n, h.Sum(nil))
		})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	rep := report{}
	if err := ln.Close(); err != nil {
		rep.CloseErr = err.Error()
	}
	<-served
	srv.Close()
	c := ln.Counters()
	rep.SYNReceived, rep.CookieValid = c.SYNReceived.Load(), c.CookieValid.Load()
	rep.HandedOver, rep.HandoffFailed = c.HandedOver.Load(), c.HandoffFailed.Load()
	json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestListenLab runs proxy.Listen and http.Serve in a server namespace and
// fetches from a client namespace over a veth pair with Go's net/http and
// curl, over IPv4 and IPv6. The server namespace has no ordinary listener
// on the port: every answer comes through a materialised socket.
func TestListenLab(t *testing.T) {
	netlabtest.Need(t)
	for _, tool := range []string{"nft", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED LOUDLY: %s not installed (scripts/test-deps.sh installs it): %v", tool, err)
		}
	}
	p := netlabtest.NewPair(t, "splpx", netip.MustParsePrefix("10.99.30.0/24"), netip.MustParsePrefix("fd00:99:30::/64"))
	client, server := p.A, p.B
	const port, table = 8030, "spl_proxy_test"
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()

	listTables := func() string {
		out, err := server.CombinedOutput(ctx, "nft", "list", "tables")
		if err != nil {
			t.Fatalf("nft list tables: %v: %s", err, out)
		}
		return string(out)
	}

	cmd := server.Command(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(port)+","+table)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := server.Start(cmd); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != "READY" {
			t.Fatalf("server said %q, want READY", l)
		}
	case <-ctx.Done():
		t.Fatal("server did not start")
	}
	if !strings.Contains(listTables(), "inet "+table) {
		t.Fatalf("nft table %s not installed:\n%s", table, listTables())
	}

	body := bytes.Repeat([]byte("synproxy-lite library mode "), 40000) // ~1 MB
	sum := fmt.Sprintf("%x", sha256.Sum256(body))
	hc := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: client.DialContext, DisableKeepAlives: true}}
	fetches := 0
	for _, fam := range []struct{ cli, srv netip.Addr }{{p.A4, p.B4}, {p.A6, p.B6}} {
		url := "http://" + netip.AddrPortFrom(fam.srv, port).String() + "/"
		wantRemote := "remote=" + netip.AddrPortFrom(fam.cli, 0).String()
		wantRemote = wantRemote[:strings.LastIndex(wantRemote, ":")+1]
		wantLocal := "local=" + netip.AddrPortFrom(fam.srv, port).String()

		resp, err := hc.Post(url, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("Go POST %s: %v", url, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		fetches++
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("Go POST %s: %d %v", url, resp.StatusCode, err)
		}
		want := fmt.Sprintf("body=%d sha=%s", len(body), sum)
		for _, w := range []string{wantRemote, wantLocal, want} {
			if !strings.Contains(string(got), w) {
				t.Errorf("Go POST %s: answer %q lacks %q", url, got, w)
			}
		}

		out, err := client.CombinedOutput(ctx, "curl", "-sS", "-g", "--max-time", "10", url)
		fetches++
		if err != nil {
			t.Fatalf("curl %s: %v: %s", url, err, out)
		}
		for _, w := range []string{wantRemote, wantLocal, "body=0 "} {
			if !strings.Contains(string(out), w) {
				t.Errorf("curl %s: answer %q lacks %q", url, out, w)
			}
		}
	}

	stdin.Close() // the server closes its Listener
	var rep report
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("server ended without a report")
		}
		if err := json.Unmarshal([]byte(l), &rep); err != nil {
			t.Fatalf("report %q: %v", l, err)
		}
	case <-ctx.Done():
		t.Fatal("server did not close")
	}
	waited = true
	if err := cmd.Wait(); err != nil {
		t.Fatalf("server: %v", err)
	}
	t.Logf("%d fetches; engine: %+v", fetches, rep)
	if rep.CloseErr != "" {
		t.Errorf("Close: %s", rep.CloseErr)
	}
	if rep.HandedOver != uint64(fetches) || rep.SYNReceived < uint64(fetches) ||
		rep.CookieValid < uint64(fetches) || rep.HandoffFailed != 0 {
		t.Errorf("engine counted %+v, want %d connections handed over and none failed", rep, fetches)
	}
	if tables := listTables(); strings.Contains(tables, table) {
		t.Errorf("Close left the nft table behind:\n%s", tables)
	}
	// With the table gone nothing answers on the port: the kernel refuses.
	if out, err := client.CombinedOutput(ctx, "curl", "-sS", "--max-time", "5",
		"http://"+netip.AddrPortFrom(p.B4, port).String()+"/"); err == nil {
		t.Errorf("fetch after Close succeeded: %s", out)
	}
}
