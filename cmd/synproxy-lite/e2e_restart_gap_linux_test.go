package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// restartedArgsEnv holds arguments that only a daemon started by a
// graceful restart adds to its own: the new process then runs with a
// configuration the old one did not have, as after an operator's edit.
const restartedArgsEnv = "SYNPROXY_LITE_E2E_RESTARTED_ARGS"

// restartedArgs is what the daemon adds to its arguments (see
// restartedArgsEnv).
func restartedArgs() string {
	if _, ok := os.LookupEnv("SYNPROXY_LITE_INHERIT"); !ok {
		return ""
	}
	return " " + os.Getenv(restartedArgsEnv)
}

// restartLab is a lab with the line server as backend on :8081 and a
// daemon protecting :8080.
type restartLab struct {
	*lab
	d      *daemonProc
	addrs  []string
	newPid int
}

// restartDrivers are the drivers the restart tests run on: each gives
// the daemon's arguments in a lab (octet: the lab's third octet, for
// each driver its own).
var restartDrivers = []struct {
	name  string
	octet int
	args  func(l *lab) []string
}{
	{"nfqueue", 0, func(l *lab) []string {
		return []string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--workers", "2",
			"--queue", strconv.Itoa(100 + l.net4)}
	}},
	{"afpacket", 5, func(l *lab) []string { return afpacketArgs(l, 2) }},
	{"afxdp", 7, func(l *lab) []string { return afxdpArgs(l) }},
}

func newRestartLab(t *testing.T, octet int, args func(l *lab) []string) *restartLab {
	l := &restartLab{lab: newLab(t, octet, false)}
	startLineServer(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	l.d = startDaemon(t, l.proxy, args(l.lab)...)
	t.Cleanup(func() {
		// The new daemon writes into the old one's output pipe: stop it
		// before the old one is reaped.
		if l.newPid != 0 {
			syscall.Kill(l.newPid, syscall.SIGTERM)
			for i := 0; i < 200 && !exited(l.newPid); i++ {
				time.Sleep(50 * time.Millisecond)
			}
			syscall.Kill(l.newPid, syscall.SIGKILL)
		}
	})
	l.addrs = []string{l.proxyIP + ":8080", "[" + l.proxy6 + "]:8080"}
	return l
}

// dialEcho connects to addr from the client namespace and exchanges one
// line; the connection stays open (closed at the test's end).
func (l *restartLab) dialEcho(t *testing.T, addr, word string) (net.Conn, *bufio.Reader, error) {
	var c net.Conn
	if err := inNS(t, l.client, func() (err error) { c, err = net.DialTimeout("tcp", addr, 30*time.Second); return }); err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	return c, r, echoLine(c, r, word)
}

func echoLine(c net.Conn, r *bufio.Reader, word string) error {
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

// waitLog waits for re in the daemons' output and returns its submatches.
func (l *restartLab) waitLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(l.d.out.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 60s:\n%s", re, l.d.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2ERestartNoGap: a client that stops reading a large download holds
// up the parking of its connection; handshakes made meanwhile are all
// answered. The clients give up after two SYN retransmissions (7 s), so
// a restart that stops answering for the parking's 5 s loses them.
func TestE2ERestartNoGap(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	for _, d := range restartDrivers {
		t.Run(d.name, func(t *testing.T) { testRestartNoGap(t, newRestartLab(t, 90+d.octet, d.args)) })
	}
}

func testRestartNoGap(t *testing.T, l *restartLab) {
	sh(t, "ip", "netns", "exec", l.client, "sysctl", "-qw", "net.ipv4.tcp_syn_retries=2")
	// The stalled client: asks for 1 GiB and never reads.
	sc, _, err := l.dialEcho(t, l.addrs[0], "stalled")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(sc, "STREAM %d\n", 1<<30)
	// Wait until the download stalls: the client's receive queue stops
	// growing (its window is closed) while the proxy's socket towards it
	// holds bytes it cannot send, so the splice is blocked in a write.
	port := sc.LocalAddr().(*net.TCPAddr).Port
	queues := func(ns, filter string) (recvQ, sendQ int) {
		out := strings.Fields(sh(t, "ip", "netns", "exec", ns, "ss", "-tnH", "state", "established", filter,
			fmt.Sprintf("%s:%d", l.clientIP, port)))
		if len(out) >= 2 {
			recvQ, _ = strconv.Atoi(out[0])
			sendQ, _ = strconv.Atoi(out[1])
		}
		return recvQ, sendQ
	}
	for deadline, last, still := time.Now().Add(60*time.Second), -1, 0; still < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the download never stalled")
		}
		time.Sleep(200 * time.Millisecond)
		recvQ, _ := queues(l.client, "src")
		_, sendQ := queues(l.proxy, "dst")
		if recvQ > 0 && recvQ == last && sendQ > 0 {
			still++
		} else {
			still = 0
		}
		last = recvQ
	}
	if err := l.d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Connections during the restart, one every 100 ms.
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = l.dialEcho(t, l.addrs[i%2], fmt.Sprintf("during-%d", i))
		}()
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	m := l.waitLog(t, regexp.MustCompile(`graceful restart: the new process took over" pid=(\d+) connections_moved=(\d+) connections_draining=(\d+)`))
	l.newPid, _ = strconv.Atoi(m[1])
	t.Logf("new pid %d, connections moved %s, draining %s", l.newPid, m[2], m[3])
	for i, err := range errs {
		if err != nil {
			t.Errorf("connection %d during the restart: %v", i, err)
		}
	}
	if strings.Contains(l.d.out.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", l.d.out.String())
	}
	// And after it.
	for _, a := range l.addrs {
		if _, _, err := l.dialEcho(t, a, "after"); err != nil {
			t.Errorf("connection after the restart: %v", err)
		}
	}
	if t.Failed() {
		t.Logf("daemon output:\n%s", l.d.out.String())
	}
}

// TestE2ERestartNewFails: the new process fails after it has moved the
// rules to its queues (its --metrics address is taken); the old process
// carries on with its rules in place, its connections and new ones work.
func TestE2ERestartNewFails(t *testing.T) {
	for _, d := range restartDrivers {
		t.Run(d.name, func(t *testing.T) {
			octet := 91 + d.octet
			metricsAddr := fmt.Sprintf("10.99.%d.2:9191", octet)
			t.Setenv(restartedArgsEnv, "--metrics "+metricsAddr)
			testRestartNewFails(t, newRestartLab(t, octet, d.args), metricsAddr)
		})
	}
}

func testRestartNewFails(t *testing.T, l *restartLab, metricsAddr string) {
	taken := listenIn(t, l.proxy, metricsAddr)
	defer taken.Close()
	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	var old []conn
	for i := range 4 {
		c, r, err := l.dialEcho(t, l.addrs[i%2], fmt.Sprintf("before-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, conn{c, r})
	}
	rulesBefore := sh(t, "ip", "netns", "exec", l.proxy, "nft", "list", "table", "inet", "synproxy_lite")
	oldPid := l.d.cmd.Process.Pid
	if err := l.d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l.waitLog(t, regexp.MustCompile(`graceful restart failed; carrying on`))
	if exited(oldPid) {
		t.Fatalf("the old daemon exited:\n%s", l.d.out.String())
	}
	out, err := execIn(l.proxy, "nft", "list", "table", "inet", "synproxy_lite")
	if err != nil {
		t.Fatalf("the table is gone: %v: %s", err, out)
	}
	counters := regexp.MustCompile(`packets \d+ bytes \d+`)
	if counters.ReplaceAllString(out, "") != counters.ReplaceAllString(rulesBefore, "") {
		t.Errorf("the rules changed:\nbefore:\n%s\nafter:\n%s", rulesBefore, out)
	}
	for i, a := range l.addrs {
		if _, _, err := l.dialEcho(t, a, fmt.Sprintf("new-%d", i)); err != nil {
			t.Errorf("new connection via %s: %v", a, err)
		}
	}
	for i, c := range old {
		if err := echoLine(c.c, c.r, fmt.Sprintf("after-%d", i)); err != nil {
			t.Errorf("connection %d from before the restart: %v", i, err)
		}
	}
	if t.Failed() {
		t.Logf("daemon output:\n%s", l.d.out.String())
	}
}

func execIn(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}
