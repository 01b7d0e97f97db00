package packaging

// TestGuide runs docs/guide.md, so the guide cannot rot.
//
// The guide's shell blocks (```sh fences; other languages are shown, not
// run) run in order, in a lab of two network namespaces: a server with an
// HTTPS service on 127.0.0.1:8443 and an nft firewall that drops what it
// does not accept (the "existing ruleset" the guide lives beside), and a
// client joined to it by a veth pair. A block runs as
//
//	ip netns exec SERVER-NS bash -euo pipefail -c BLOCK
//
// in the directory that holds the .deb, unless the line just before its
// fence is an HTML comment that says otherwise:
//
//	<!-- guide-test: client -->   run in the client namespace, with
//	                               SERVER set to the server's IPv4 address
//	<!-- guide-test: build -->    the package build ("make package"): the
//	                               test builds it itself, with buildDeb, as
//	                               TestDebInstall does, into a temporary
//	                               directory, and the blocks run there
//	<!-- guide-test: systemd -->  systemctl lines, played (below)
//
// PID 1 is not systemd where the tests run, so systemctl cannot work. A
// systemd block may hold only the lines systemdActions knows, and each is
// played by doing what systemd would do with the installed unit file
// (/lib/systemd/system/synproxy-lite.service, read, not assumed):
//
//   - "systemctl enable --now synproxy-lite": run the unit's ExecStart= as
//     its User= and Group= with its AmbientCapabilities=, in the server
//     namespace, with the files of its LoadCredential= lines copied into a
//     fresh CREDENTIALS_DIRECTORY readable by that user only, and a
//     NOTIFY_SOCKET the test listens on; wait for READY=1.
//   - "systemctl reload synproxy-lite": the unit's ExecReload= must be
//     "/bin/kill -HUP $MAINPID"; send SIGHUP to the main process, follow
//     MAINPID= and wait for READY=1 from the new main process.
//   - "systemctl disable --now synproxy-lite": SIGTERM to the main process;
//     wait for STOPPING=1 and its exit.
//
// What is not emulated: the sandboxing settings (ProtectSystem= and the
// like), LimitNOFILE=, Restart=, and enable's symlink. `systemd-analyze
// verify` checks the unit in TestDebInstall.
//
// Every other line runs verbatim: dpkg installs the package on this
// machine (a block that fails on dpkg's lock is run again, up to ten
// minutes) and writes /etc/synproxy-lite. Like TestDebInstall, the test
// skips where the package, its user or its files exist already, and
// cleanup purges the package, deletes the user and checks nothing is left;
// the nft tables live in the lab's namespaces, which are deleted, and the
// host's own list of tables is checked unchanged.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/config"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

const (
	guidePath = "../docs/guide.md"
	unitPath  = "/lib/systemd/system/synproxy-lite.service"
	// blockTimeout bounds one block; the test ends instead of hanging.
	blockTimeout = 30 * time.Second
)

// A guideBlock is one shell block of the guide.
type guideBlock struct {
	line  int    // of the opening fence
	where string // "server", "client", "build" or "systemd"
	text  string
}

// guideBlocks returns the ```sh blocks of a Markdown text, in order, each
// with where its marker says it runs ("server" without one).
func guideBlocks(md string) ([]guideBlock, error) {
	var blocks []guideBlock
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		lang := strings.TrimPrefix(fence, "```")
		start := i
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("line %d: a block is not closed", start+1)
		}
		where := "server"
		if start > 0 {
			if m, ok := strings.CutPrefix(strings.TrimSpace(lines[start-1]), "<!-- guide-test:"); ok {
				where = strings.TrimSpace(strings.TrimSuffix(m, "-->"))
				switch where {
				case "client", "build", "systemd":
				default:
					return nil, fmt.Errorf("line %d: unknown marker %q", start, where)
				}
				if lang != "sh" {
					return nil, fmt.Errorf("line %d: a marker before a %q block, which does not run", start, lang)
				}
			}
		}
		if lang == "sh" {
			blocks = append(blocks, guideBlock{line: start + 1, where: where, text: strings.Join(body, "\n") + "\n"})
		}
	}
	return blocks, nil
}

func TestGuideBlocks(t *testing.T) {
	for _, tc := range []struct {
		name, md string
		want     []guideBlock
		err      bool
	}{
		{"server by default", "text\n```sh\necho a\n```\n", []guideBlock{{2, "server", "echo a\n"}}, false},
		{"marked", "<!-- guide-test: client -->\n```sh\ncurl x\n```\n", []guideBlock{{2, "client", "curl x\n"}}, false},
		{"other languages shown only", "```toml\na = 1\n```\n```\nplain\n```\n", nil, false},
		{"unknown marker", "<!-- guide-test: laptop -->\n```sh\nx\n```\n", nil, true},
		{"marker on a block that does not run", "<!-- guide-test: client -->\n```toml\nx\n```\n", nil, true},
		{"unclosed", "```sh\nx\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := guideBlocks(tc.md)
			if (err != nil) != tc.err || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("guideBlocks = %v, %v; want %v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
	b, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := guideBlocks(string(b))
	if err != nil {
		t.Fatalf("%s: %v", guidePath, err)
	}
	// The configuration snippets, shown and not run, are files
	// config.Parse accepts.
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```toml" {
			continue
		}
		start := i + 1
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
		}
		if _, err := config.Parse([]byte(strings.Join(lines[start:i], "\n"))); err != nil {
			t.Errorf("%s:%d: the configuration does not parse: %v", guidePath, start, err)
		}
	}
	seen := map[string]bool{}
	for _, bl := range blocks {
		seen[bl.where] = true
		if bl.where == "systemd" {
			for _, l := range strings.Split(strings.TrimSpace(bl.text), "\n") {
				if _, ok := systemdActions[strings.TrimSpace(l)]; !ok {
					t.Errorf("%s:%d: the test cannot play %q", guidePath, bl.line, l)
				}
			}
		}
	}
	for _, w := range []string{"server", "client", "build", "systemd"} {
		if !seen[w] {
			t.Errorf("%s has no %s block", guidePath, w)
		}
	}
}

// systemdActions are the systemctl lines a systemd block may hold.
var systemdActions = map[string]func(*unitRun, *testing.T){
	"systemctl enable --now synproxy-lite":  (*unitRun).start,
	"systemctl reload synproxy-lite":        (*unitRun).reload,
	"systemctl disable --now synproxy-lite": (*unitRun).stop,
}

func TestGuide(t *testing.T) {
	netlabtest.Need(t)
	for _, tool := range []string{"ip", "bash", "curl", "nft", "capsh", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED LOUDLY: %s is not installed; the guide is not tested", tool)
		}
	}
	md, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := guideBlocks(string(md))
	if err != nil {
		t.Fatalf("%s: %v", guidePath, err)
	}
	hostTables, _ := exec.Command("nft", "list", "tables").CombinedOutput()

	deb := buildDeb(t) // skips loudly without dpkg, or where the package is
	purgeOnCleanup(t)  // runs last: after the daemon is stopped and the lab gone
	t.Cleanup(func() {
		if now, _ := exec.Command("nft", "list", "tables").CombinedOutput(); !bytes.Equal(now, hostTables) {
			t.Errorf("the host's nft tables changed:\nbefore:\n%s\nafter:\n%s", hostTables, now)
		}
	})

	// The lab: client (A) and server (B).
	p := netlabtest.NewPair(t, "splgd", netip.MustParsePrefix("10.99.214.0/24"), netip.MustParsePrefix("fd00:99:214::/64"))
	client, server := p.A, p.B
	firewall := `table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif lo accept
		meta l4proto { icmp, ipv6-icmp } accept
		tcp dport { 22, 443 } accept
	}
}
`
	fw := filepath.Join(t.TempDir(), "firewall.nft")
	if err := os.WriteFile(fw, []byte(firewall), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := server.CombinedOutput(context.Background(), "nft", "-f", fw); err != nil {
		t.Fatalf("the server's firewall: %v\n%s", err, out)
	}
	listFirewall := func() string {
		out, err := server.CombinedOutput(context.Background(), "nft", "list", "table", "inet", "filter")
		if err != nil {
			t.Fatalf("nft list table inet filter: %v\n%s", err, out)
		}
		return string(out)
	}
	firewallBefore := listFirewall()
	// The service, moved to 127.0.0.1:8443 as the guide says.
	var served atomic.Int64
	ln, err := server.Listen("tcp", "127.0.0.1:8443")
	if err != nil {
		t.Fatal(err)
	}
	svc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "hello from the service on 8443\n")
	}))
	svc.Listener.Close()
	svc.Listener = ln
	svc.Config.ErrorLog = log.New(io.Discard, "", 0) // readiness probes close without a TLS handshake
	svc.StartTLS()
	t.Cleanup(svc.Close)

	u := &unitRun{ns: server}
	t.Cleanup(func() { u.kill(t) })

	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}
	for _, bl := range blocks {
		t.Logf("%s:%d (%s):\n%s", guidePath, bl.line, bl.where, bl.text)
		switch bl.where {
		case "build":
			if strings.TrimSpace(bl.text) != "make package" {
				t.Fatalf("%s:%d: the build block is %q; the test builds with make package", guidePath, bl.line, bl.text)
			}
			continue
		case "systemd":
			for _, l := range strings.Split(strings.TrimSpace(bl.text), "\n") {
				act, ok := systemdActions[strings.TrimSpace(l)]
				if !ok {
					t.Fatalf("%s:%d: the test cannot play %q", guidePath, bl.line, l)
				}
				act(u, t)
			}
			continue
		}
		ns, blockEnv := server, env
		if bl.where == "client" {
			ns, blockEnv = client, append(env, "SERVER="+p.B4.String())
		}
		before := served.Load()
		for try := 0; ; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name(), "bash", "-euo", "pipefail", "-c", bl.text)
			cmd.Dir, cmd.Env = filepath.Dir(deb), blockEnv
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil && strings.Contains(bl.text, "dpkg") && strings.Contains(string(out), "lock") && try < 600 {
				time.Sleep(time.Second)
				continue
			}
			t.Logf("output:\n%s", out)
			if err != nil {
				t.Fatalf("%s:%d: the block failed: %v\n%s\ndaemon:\n%s", guidePath, bl.line, err, out, u.output())
			}
			break
		}
		if bl.where == "client" && served.Load() == before {
			t.Errorf("%s:%d: the client's block ran, but the service on 8443 served nothing", guidePath, bl.line)
		}
	}
	if u.running() {
		t.Errorf("the guide leaves the daemon running")
	}
	if now := listFirewall(); now != firewallBefore {
		t.Errorf("the server's own firewall changed:\nbefore:\n%s\nafter:\n%s", firewallBefore, now)
	}
	if served.Load() == 0 {
		t.Error("the service was never reached")
	}
}

// unitRun plays the installed unit, as systemd would run it.
type unitRun struct {
	ns      *netlab.NS
	cmd     *exec.Cmd
	waited  chan struct{}
	mainPID int
	dir     string // holds the notify socket and the credentials
	notify  *net.UnixConn
	msgs    chan string
	mu      sync.Mutex
	out     bytes.Buffer
}

func (u *unitRun) Write(b []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.out.Write(b)
}

func (u *unitRun) output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.out.String()
}

// unitFile reads the [Service] settings of the installed unit; a setting
// given more than once keeps every value.
func unitFile(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "["):
			section = l
		case section == "[Service]":
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("%s: %q", unitPath, l)
			}
			set[k] = append(set[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return set
}

// one returns the one value of a unit setting.
func one(t *testing.T, set map[string][]string, key string) string {
	t.Helper()
	if len(set[key]) != 1 {
		t.Fatalf("%s: %s= is given %d times, want once", unitPath, key, len(set[key]))
	}
	return set[key][0]
}

// capabilities are the capabilities the test knows to raise
// (include/uapi/linux/capability.h).
var capabilities = map[string]uintptr{"CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13}

func (u *unitRun) start(t *testing.T) {
	t.Helper()
	if u.cmd != nil {
		t.Fatal("systemctl enable --now: the daemon runs already")
	}
	set := unitFile(t)
	if typ := one(t, set, "Type"); typ != "notify" {
		t.Fatalf("%s: Type=%s; the test plays Type=notify", unitPath, typ)
	}
	argv := strings.Fields(one(t, set, "ExecStart"))
	usr, err := user.Lookup(one(t, set, "User"))
	if err != nil {
		t.Fatalf("the unit's user: %v", err)
	}
	grp, err := user.LookupGroup(one(t, set, "Group"))
	if err != nil {
		t.Fatalf("the unit's group: %v", err)
	}
	uid, _ := strconv.Atoi(usr.Uid)
	gid, _ := strconv.Atoi(grp.Gid)
	var caps []uintptr
	for _, v := range set["AmbientCapabilities"] {
		for _, name := range strings.Fields(v) {
			c, ok := capabilities[name]
			if !ok {
				t.Fatalf("%s: AmbientCapabilities= has %s, which the test does not know", unitPath, name)
			}
			caps = append(caps, c)
		}
	}

	// A directory the unit's user may enter, for the notify socket and the
	// credentials; removed at the end.
	u.dir, err = os.MkdirTemp("", "synproxy-lite-guide-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(u.dir) })
	if err := os.Chmod(u.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// LoadCredential=NAME:PATH: a copy of PATH, read as root, in a
	// directory of the user's, readable by the user only.
	creds := filepath.Join(u.dir, "credentials")
	if err := os.Mkdir(creds, 0o500); err != nil {
		t.Fatal(err)
	}
	for _, v := range set["LoadCredential"] {
		name, path, ok := strings.Cut(v, ":")
		if !ok {
			t.Fatalf("%s: LoadCredential=%s", unitPath, v)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("LoadCredential=%s: %v", v, err)
		}
		f := filepath.Join(creds, name)
		if err := os.WriteFile(f, b, 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(creds, uid, gid); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(u.dir, "notify")
	u.notify, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.notify.Close() })
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	u.msgs = make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := u.notify.Read(buf)
			if err != nil {
				close(u.msgs)
				return
			}
			u.msgs <- string(buf[:n])
		}
	}()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"USER=" + usr.Username, "LOGNAME=" + usr.Username, "HOME=" + usr.HomeDir,
		"NOTIFY_SOCKET=" + sock,
		"CREDENTIALS_DIRECTORY=" + creds,
	}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = u, u
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
		AmbientCaps: caps,
		Setpgid:     true,
	}
	if err := u.ns.Start(cmd); err != nil {
		t.Fatalf("starting %s: %v", argv, err)
	}
	u.cmd, u.mainPID = cmd, cmd.Process.Pid
	u.waited = make(chan struct{})
	go func() { cmd.Wait(); close(u.waited) }()
	u.await(t, "READY=1")
}

// await reads notifications until one holds want, following MAINPID=.
// The first process exiting before want is a failure while it is the
// main process; after a graceful restart handed over, it is the old
// process draining.
func (u *unitRun) await(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(blockTimeout)
	exited := u.waited
	if !alive(u.cmd.Process.Pid) {
		exited = nil
	}
	// got handles one message and says whether it holds want.
	got := func(m string) bool {
		t.Logf("sd_notify: %q", m)
		found := false
		for _, kv := range strings.Split(m, "\n") {
			if pid, ok := strings.CutPrefix(kv, "MAINPID="); ok {
				n, err := strconv.Atoi(pid)
				if err != nil {
					t.Fatalf("sd_notify: %q", m)
				}
				u.mainPID = n
			}
			found = found || kv == want
		}
		return found
	}
	for {
		select {
		case m, ok := <-u.msgs:
			if !ok {
				t.Fatal("the notify socket closed")
			}
			if got(m) {
				return
			}
		case <-exited:
			// What it said before it exited is in the channel already.
			for drained := false; !drained; {
				select {
				case m := <-u.msgs:
					if got(m) {
						return
					}
				default:
					drained = true
				}
			}
			if u.mainPID == u.cmd.Process.Pid {
				t.Fatalf("the daemon exited (%v) before %s:\n%s", u.cmd.ProcessState, want, u.output())
			}
			exited = nil
		case <-timeout:
			t.Fatalf("no %s within %v:\n%s", want, blockTimeout, u.output())
		}
	}
}

func (u *unitRun) reload(t *testing.T) {
	t.Helper()
	if !u.running() {
		t.Fatal("systemctl reload: the daemon does not run")
	}
	if r := one(t, unitFile(t), "ExecReload"); r != "/bin/kill -HUP $MAINPID" {
		t.Fatalf("%s: ExecReload=%s; the test plays /bin/kill -HUP $MAINPID", unitPath, r)
	}
	old := u.mainPID
	if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	u.await(t, "RELOADING=1")
	u.await(t, "READY=1")
	if u.mainPID == old {
		t.Fatalf("systemctl reload: the daemon did not hand over to a new process:\n%s", u.output())
	}
}

func (u *unitRun) stop(t *testing.T) {
	t.Helper()
	if !u.running() {
		t.Fatal("systemctl stop: the daemon does not run")
	}
	if err := syscall.Kill(u.mainPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	u.await(t, "STOPPING=1")
	for deadline := time.Now().Add(blockTimeout); alive(u.mainPID); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon (pid %d) did not exit after SIGTERM:\n%s", u.mainPID, u.output())
		}
	}
	<-u.waited
	t.Logf("the daemon's log:\n%s", u.output())
}

// running says whether the main process runs.
func (u *unitRun) running() bool { return u.cmd != nil && alive(u.mainPID) }

// kill ends what is left of the daemon, the main process and the first one.
func (u *unitRun) kill(t *testing.T) {
	if u.cmd == nil {
		return
	}
	for i, pid := range []int{u.mainPID, u.cmd.Process.Pid} {
		if alive(pid) && (i == 0 || pid != u.mainPID) {
			t.Errorf("the daemon (pid %d) still runs; killing it", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	<-u.waited
}

// alive says whether pid runs: it exists and is not a zombie (a process
// of a graceful restart is not the test's child, and whoever reaps it may
// take its time).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
