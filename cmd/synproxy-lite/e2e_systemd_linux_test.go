package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/config"
	"github.com/synproxy-lite/synproxy-lite/internal/sdnotify"
)

// notification is one sd_notify datagram and the pid that sent it.
type notification struct {
	pid   int
	state map[string]string
	raw   string
}

// fakeNotifySocket is systemd's notification socket as the test sees it:
// a unixgram socket at a path (a path reaches across network namespaces,
// an abstract name would not) that records each datagram with its
// sender's credentials (SO_PASSCRED), as systemd does.
func fakeNotifySocket(t *testing.T) (string, <-chan notification) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1) })
	if serr != nil {
		t.Fatal(serr)
	}
	ch := make(chan notification, 64)
	go func() {
		b, oob := make([]byte, 4096), make([]byte, 256)
		for {
			n, oobn, _, _, err := c.ReadMsgUnix(b, oob)
			if err != nil {
				return
			}
			m := notification{pid: -1, state: map[string]string{}, raw: string(b[:n])}
			if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range msgs {
					if cred, err := syscall.ParseUnixCredentials(&cm); err == nil {
						m.pid = int(cred.Pid)
					}
				}
			}
			for _, line := range strings.Split(strings.TrimSuffix(m.raw, "\n"), "\n") {
				k, v, _ := strings.Cut(line, "=")
				m.state[k] = v
			}
			ch <- m
		}
	}()
	return path, ch
}

// TestE2ESystemdNotify runs the daemon as systemd would with Type=notify
// and LoadCredential=: READY=1 (with its MAINPID) once it serves; on
// SIGHUP RELOADING=1 with MONOTONIC_USEC, then, for settings that are now
// invalid (the key credential readable by others), the restart refused
// with the daemon untouched and READY=1 again; once fixed, SIGHUP hands
// over: the old process says MAINPID= of the new one, the new one says
// READY=1 itself, and the old one never says STOPPING=1; SIGTERM to the
// new one: STOPPING=1.
func TestE2ESystemdNotify(t *testing.T) {
	l := newLab(t, 123, false)
	socket, notes := fakeNotifySocket(t)
	t.Setenv(sdnotify.SocketEnv, socket)
	creds := t.TempDir()
	keyPath := writeKeyFile(t, creds, "key", specKeyHex, 0o440, os.Geteuid()) // the ACL mask systemd shows
	t.Setenv(config.CredentialsEnv, creds)
	startLineServer(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	d := startDaemon(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8081", "--key-file", "key",
		"--workers", "1", "--queue", "1230")
	oldPid := d.cmd.Process.Pid
	newPid := 0
	t.Cleanup(func() {
		if newPid != 0 { // it writes into the old one's output: stop it first
			syscall.Kill(newPid, syscall.SIGTERM)
			for i := 0; i < 200 && !exited(newPid); i++ {
				time.Sleep(50 * time.Millisecond)
			}
			syscall.Kill(newPid, syscall.SIGKILL)
		}
	})
	next := func(what string) notification {
		t.Helper()
		select {
		case m := <-notes:
			t.Logf("pid %d: %q", m.pid, m.raw)
			return m
		case <-time.After(30 * time.Second):
			t.Fatalf("no notification (%s) within 30s; daemon output:\n%s", what, d.out.String())
			return notification{}
		}
	}
	echo := func(word string) {
		t.Helper()
		var c net.Conn
		if err := inNS(t, l.client, func() (err error) {
			c, err = net.DialTimeout("tcp", l.proxyIP+":8080", 10*time.Second)
			return
		}); err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "ECHO %s\n", word)
		if got, err := bufio.NewReader(c).ReadString('\n'); got != word+"\n" {
			t.Fatalf("echo %q: got %q, %v", word, got, err)
		}
	}

	m := next("ready")
	if _, ok := m.state["READY"]; !ok || m.pid != oldPid || m.state["MAINPID"] != strconv.Itoa(oldPid) {
		t.Fatalf("first notification %q from pid %d, want READY=1 and MAINPID=%d from it", m.raw, m.pid, oldPid)
	}
	echo("started")

	reloading := func() {
		t.Helper()
		if err := syscall.Kill(oldPid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		m := next("reloading")
		us, err := strconv.ParseUint(m.state["MONOTONIC_USEC"], 10, 64)
		if m.state["RELOADING"] != "1" || m.pid != oldPid || err != nil || us == 0 {
			t.Fatalf("after SIGHUP %q from pid %d, want RELOADING=1 and MONOTONIC_USEC from pid %d", m.raw, m.pid, oldPid)
		}
	}

	// An invalid setting: the restart is refused, the daemon serves on.
	if err := os.Chmod(keyPath, 0o444); err != nil {
		t.Fatal(err)
	}
	reloading()
	m = next("reload refused")
	if m.state["READY"] != "1" || m.pid != oldPid || !strings.Contains(m.state["STATUS"], "reload failed") {
		t.Fatalf("after a refused reload %q from pid %d, want READY=1 and a STATUS that says so from pid %d", m.raw, m.pid, oldPid)
	}
	// The log reaches d.out through a pipe, after the notification that
	// the daemon sent once it had logged: wait for the line.
	out := d.out.String()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out, "graceful restart refused") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		out = d.out.String()
	}
	if !strings.Contains(out, "graceful restart refused") || !strings.Contains(out, "has mode 0444") ||
		strings.Contains(out, "handing over to a new process") {
		t.Fatalf("the refused restart is not logged with its reason, or a new process started:\n%s", out)
	}
	echo("refused")

	// Fixed: the restart hands over.
	if err := os.Chmod(keyPath, 0o440); err != nil {
		t.Fatal(err)
	}
	reloading()
	pidRE := regexp.MustCompile(`graceful restart: the new process took over" pid=(\d+)`)
	var mainPID, readyFrom string
	for range 2 {
		m := next("hand-over")
		switch {
		case m.pid == oldPid && len(m.state) == 1 && m.state["MAINPID"] != "":
			mainPID = m.state["MAINPID"]
		case m.state["READY"] == "1" && m.pid != oldPid && m.state["MAINPID"] == strconv.Itoa(m.pid):
			readyFrom = strconv.Itoa(m.pid)
			newPid = m.pid
		default:
			t.Fatalf("unexpected notification %q from pid %d during the hand-over", m.raw, m.pid)
		}
	}
	var got []string
	for deadline := time.Now().Add(30 * time.Second); got == nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		got = pidRE.FindStringSubmatch(d.out.String())
	}
	if got == nil || mainPID != got[1] || readyFrom != got[1] {
		t.Fatalf("MAINPID=%s from the old process, READY=1 from pid %s; the log names %v", mainPID, readyFrom, got)
	}
	for deadline := time.Now().Add(30 * time.Second); !exited(oldPid); {
		if time.Now().After(deadline) {
			t.Fatalf("the old daemon did not exit:\n%s", d.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	echo("handed-over")
	select {
	case m := <-notes:
		t.Fatalf("a notification %q from pid %d after the hand-over, before any signal", m.raw, m.pid)
	default:
	}

	if err := syscall.Kill(newPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	m = next("stopping")
	if m.state["STOPPING"] != "1" || m.pid != newPid {
		t.Fatalf("after SIGTERM %q from pid %d, want STOPPING=1 from pid %d", m.raw, m.pid, newPid)
	}
	for _, line := range strings.Split(d.out.String(), "\n") {
		if strings.Contains(line, "level=ERROR") && !strings.Contains(line, "graceful restart refused") {
			t.Errorf("an error logged: %s", line)
		}
	}
}
