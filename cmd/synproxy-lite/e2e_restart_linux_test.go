package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lineServer is the backend of the restart test. Commands, one per line:
//
//	ECHO x     answers "x"
//	STREAM n   sends n bytes of detReader in 64 KiB chunks, 1 ms apart
//	UPLOAD n   reads n bytes, answers their SHA-256 in hex
func startLineServer(t *testing.T, ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					f := strings.Fields(line)
					if len(f) != 2 {
						return
					}
					switch f[0] {
					case "ECHO":
						fmt.Fprintf(c, "%s\n", f[1])
					case "STREAM":
						n, _ := strconv.ParseInt(f[1], 10, 64)
						src := io.LimitReader(&detReader{}, n)
						buf := make([]byte, 64<<10)
						for {
							k, err := io.ReadFull(src, buf)
							if k > 0 {
								if _, err := c.Write(buf[:k]); err != nil {
									return
								}
							}
							if err != nil {
								break
							}
							time.Sleep(time.Millisecond)
						}
					case "UPLOAD":
						n, _ := strconv.ParseInt(f[1], 10, 64)
						h := sha256.New()
						if _, err := io.CopyN(h, r, n); err != nil {
							return
						}
						fmt.Fprintf(c, "%x\n", h.Sum(nil))
					}
				}
			}()
		}
	}()
}

// TestE2EGracefulRestart: SIGHUP starts a new daemon that inherits the open
// connections; none is dropped, including a download and an upload that
// are in full flow while it happens, and new connections work afterwards.
func TestE2EGracefulRestart(t *testing.T) {
	testGracefulRestart(t, 18, func(l *lab) []string {
		return []string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--workers", "2", "--queue", "160"}
	})
}

// testGracefulRestart runs TestE2EGracefulRestart in a lab on octet, with
// the daemon's arguments from args.
func testGracefulRestart(t *testing.T, octet int, args func(l *lab) []string) {
	l := newLab(t, octet, false)
	startLineServer(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	d := startDaemon(t, l.proxy, args(l)...)
	newPid := 0
	t.Cleanup(func() {
		// The new daemon writes into the old one's output pipe: stop it
		// before the old one is reaped.
		if newPid != 0 {
			syscall.Kill(newPid, syscall.SIGTERM)
			for i := 0; i < 200 && syscall.Kill(newPid, 0) == nil; i++ {
				time.Sleep(50 * time.Millisecond)
			}
			syscall.Kill(newPid, syscall.SIGKILL)
		}
	})
	dial := func(addr string) (net.Conn, *bufio.Reader) {
		t.Helper()
		var c net.Conn
		if err := inNS(t, l.client, func() (err error) { c, err = net.DialTimeout("tcp", addr, 10*time.Second); return }); err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return c, bufio.NewReader(c)
	}
	echo := func(c net.Conn, r *bufio.Reader, word string) error {
		if _, err := fmt.Fprintf(c, "ECHO %s\n", word); err != nil {
			return err
		}
		got, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if got != word+"\n" {
			return fmt.Errorf("echo %q, got %q", word, got)
		}
		return nil
	}
	addrs := []string{l.proxyIP + ":8080", "[" + l.proxy6 + "]:8080"}
	// Idle connections, v4 and v6.
	type idle struct {
		c net.Conn
		r *bufio.Reader
	}
	var idles []idle
	for i := 0; i < 6; i++ {
		c, r := dial(addrs[i%2])
		if err := echo(c, r, fmt.Sprintf("before-%d", i)); err != nil {
			t.Logf("client sockets:\n%s\nproxy sockets:\n%s", sh(t, "ip", "netns", "exec", l.client, "ss", "-tnie"),
				sh(t, "ip", "netns", "exec", l.proxy, "ss", "-tnie"))
			t.Fatal(err)
		}
		idles = append(idles, idle{c, r})
	}
	// A download and an upload in flow across the restart.
	const streamN, uploadN = 48 << 20, 32 << 20
	sc, sr := dial(addrs[0])
	fmt.Fprintf(sc, "STREAM %d\n", streamN)
	streamDone := make(chan error, 1)
	progress := make(chan struct{})
	go func() {
		h := sha256.New()
		first := int64(1 << 20)
		if _, err := io.CopyN(h, sr, first); err != nil {
			close(progress)
			streamDone <- err
			return
		}
		close(progress)
		if _, err := io.CopyN(h, sr, streamN-first); err != nil {
			streamDone <- fmt.Errorf("download: %w", err)
			return
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != detSum(streamN) {
			streamDone <- fmt.Errorf("download checksum %s, want %s", got, detSum(streamN))
			return
		}
		streamDone <- nil
	}()
	uc, ur := dial(addrs[1])
	uploadDone := make(chan error, 1)
	go func() {
		fmt.Fprintf(uc, "UPLOAD %d\n", uploadN)
		src := io.LimitReader(&detReader{}, uploadN)
		buf := make([]byte, 64<<10)
		for {
			k, err := io.ReadFull(src, buf)
			if k > 0 {
				if _, err := uc.Write(buf[:k]); err != nil {
					uploadDone <- fmt.Errorf("upload write: %w", err)
					return
				}
			}
			if err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		got, err := ur.ReadString('\n')
		if err != nil || got != detSum(uploadN)+"\n" {
			uploadDone <- fmt.Errorf("upload: backend answered %q, %v", got, err)
			return
		}
		uploadDone <- nil
	}()
	<-progress

	oldPid := d.cmd.Process.Pid
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pidRE := regexp.MustCompile(`graceful restart: the new process took over" pid=(\d+) connections_moved=(\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	var m []string
	for m == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no takeover within 30s:\n%s", d.out.String())
		}
		time.Sleep(20 * time.Millisecond)
		m = pidRE.FindStringSubmatch(d.out.String())
	}
	newPid, _ = strconv.Atoi(m[1])
	t.Logf("old pid %d, new pid %d, connections moved %s", oldPid, newPid, m[2])
	// The old process exits once its remaining splices end.
	for !exited(oldPid) {
		if time.Now().After(deadline) {
			t.Fatalf("the old daemon did not exit:\n%s", d.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(d.out.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", d.out.String())
	}
	if !strings.Contains(sh(t, "ip", "netns", "exec", l.proxy, "nft", "list", "tables"), "synproxy_lite") {
		t.Fatal("the table is gone after the old daemon exited")
	}
	for i, c := range idles {
		if err := echo(c.c, c.r, fmt.Sprintf("after-%d", i)); err != nil {
			t.Errorf("idle connection %d after the restart: %v", i, err)
		}
	}
	if err := <-streamDone; err != nil {
		t.Error(err)
	}
	if err := <-uploadDone; err != nil {
		t.Error(err)
	}
	// New connections reach the new daemon, through its queues.
	for _, a := range addrs {
		c, r := dial(a)
		if err := echo(c, r, "new"); err != nil {
			t.Errorf("new connection via %s: %v", a, err)
		}
	}
	if !strings.Contains(d.out.String(), `adopted the open connections" connections=`) {
		t.Errorf("the new daemon did not report adopting:\n%s", d.out.String())
	}
	if t.Failed() {
		t.Logf("daemon output:\n%s", d.out.String())
	}
}

// exited reports whether pid is gone or a zombie.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}
