package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExplainExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "site")
	out, errOut, code := runCmd(t, "explain", "--export", dir)
	if code != exitOK || !strings.Contains(out, dir) {
		t.Fatalf("exit %d, out %q, err %q", code, out, errOut)
	}
	for _, f := range []string{"index.html", "app.js", "style.css", "wasm_exec.js", "explain.wasm", "explain.wasm.gz"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "explain.wasm"))
	if !bytes.HasPrefix(b, []byte("\x00asm")) {
		t.Error("exported explain.wasm is not WebAssembly")
	}
}

func TestExplainUsage(t *testing.T) {
	if _, _, code := runCmd(t, "explain", "--bogus"); code != exitUsage {
		t.Errorf("--bogus: exit %d", code)
	}
	if _, _, code := runCmd(t, "explain", "extra"); code != exitUsage {
		t.Errorf("extra argument: exit %d", code)
	}
	if out, _, code := runCmd(t, "explain", "-h"); code != exitOK || !strings.Contains(out, "--listen") {
		t.Errorf("-h: exit %d, %q", code, out)
	}
	if _, errOut, code := runCmd(t, "explain", "--listen", "256.0.0.1:1"); code != exitFailure || errOut == "" {
		t.Errorf("bad listen address: exit %d, %q", code, errOut)
	}
}

// TestExplainServe serves the page on a loopback port, fetches it and the
// compressed wasm with a real HTTP client, then stops it by cancelling the
// context.
func TestExplainServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() { done <- serveExplain(ctx, ln, &out, &errOut) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}

	resp, err := client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("SYN cookies, computed")) {
		t.Errorf("GET /: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", base+"/explain.wasm", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	zbody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Type") != "application/wasm" {
		t.Errorf("wasm headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zbody))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || !bytes.HasPrefix(raw, []byte("\x00asm")) {
		t.Errorf("wasm body: %v", err)
	}
	t.Logf("explain.wasm: %d bytes, %d gzip-compressed on the wire", len(raw), len(zbody))

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	if !strings.Contains(out.String(), base) {
		t.Errorf("output %q does not name %s", out.String(), base)
	}
}
