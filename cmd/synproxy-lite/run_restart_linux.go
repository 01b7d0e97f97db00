package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// Graceful restart (SIGHUP).
//
// The old process parks every splice at a clean point (reads interrupted,
// a write in progress finished, so no byte sits in a buffer), releases its
// queues (the nft table stays, so packets of open connections keep going
// straight to their sockets) and starts its own executable again with the
// same arguments. The new process inherits, as extra files:
//
//	fd 3      a pipe it writes "ready\n" to once its queues and rules are up
//	fd 4      a pipe carrying the cookie key (32 bytes), so handshakes in
//	          flight complete
//	fd 5, 6   client and backend socket of the first splice, and so on
//
// and the environment variable restartEnv, which says how many splices
// follow and which of their directions have already ended. Once the new
// process is ready, the old one closes its copies of the sockets and exits
// without removing the table. Splices that cannot be parked within
// parkTimeout (a write blocked on a slow peer) stay with the old process,
// which serves them to their end before it exits. If the new process fails
// to come up, the old one resumes everything and carries on.
const (
	restartEnv   = "SYNPROXY_LITE_INHERIT"
	parkTimeout  = 5 * time.Second
	readyTimeout = 20 * time.Second
)

// inheritance is what a restarted process received.
type inheritance struct {
	ready   *os.File
	key     *cookie.Key
	splices []*splice
}

// inherited reads restartEnv and the inherited files; nil when the process
// was not started by a graceful restart.
func inherited() (*inheritance, error) {
	v, ok := os.LookupEnv(restartEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(restartEnv)
	in := &inheritance{ready: os.NewFile(3, "restart-ready")}
	kf := os.NewFile(4, "restart-key")
	kb, err := io.ReadAll(io.LimitReader(kf, 64))
	kf.Close()
	if err != nil {
		return nil, fmt.Errorf("restart: reading the key: %w", err)
	}
	if len(kb) == cookie.KeySize {
		k, err := cookie.NewKey(kb)
		if err != nil {
			return nil, fmt.Errorf("restart: %w", err)
		}
		in.key = &k
	}
	if v == "" {
		return in, nil
	}
	for i, st := range strings.Split(v, ",") {
		if len(st) != 2 {
			return nil, fmt.Errorf("restart: bad %s entry %q", restartEnv, st)
		}
		c, err := fileTCPConn(5+2*i, "client")
		if err != nil {
			return nil, err
		}
		b, err := fileTCPConn(6+2*i, "backend")
		if err != nil {
			c.Close()
			return nil, err
		}
		s := &splice{client: c, backend: b, from: c.RemoteAddr().String()}
		s.c2bDone.Store(st[0] == '1')
		s.b2cDone.Store(st[1] == '1')
		in.splices = append(in.splices, s)
	}
	return in, nil
}

func fileTCPConn(fd int, what string) (*net.TCPConn, error) {
	f := os.NewFile(uintptr(fd), what)
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("restart: inherited %s socket (fd %d): %w", what, fd, err)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("restart: inherited fd %d is not a TCP socket", fd)
	}
	return tc, nil
}

// adopt starts the inherited splices.
func (p *proxyHandoff) adopt(in *inheritance) {
	for _, s := range in.splices {
		p.start(s)
	}
}

// signalReady tells the old process that this one has taken over.
func (in *inheritance) signalReady() {
	if in != nil && in.ready != nil {
		in.ready.WriteString("ready\n")
		in.ready.Close()
		in.ready = nil
	}
}

// restartCommand returns the command that starts this program again.
// Tests replace it.
var restartCommand = func() (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, os.Args[1:]...), nil
}

// handOver parks the splices, starts the new process with them and waits
// until it is ready. On success the parked splices are closed here (the new
// process holds them) and the ones that could not be parked keep running
// until they end; the caller then waits for them with Wait. On failure
// every splice is resumed here.
func (p *proxyHandoff) handOver(key *cookie.Key, log *slog.Logger) (moved, kept int, err error) {
	p.mu.Lock()
	all := make([]*splice, 0, len(p.conns))
	for s := range p.conns {
		all = append(all, s)
	}
	p.mu.Unlock()
	waits := make([]<-chan struct{}, len(all))
	for i, s := range all {
		waits[i] = s.pause()
	}
	deadline := time.After(parkTimeout)
	var parked, stuck []*splice
	for i, s := range all {
		select {
		case <-waits[i]:
			parked = append(parked, s)
		case <-s.ended:
		case <-deadline:
			stuck = append(stuck, s)
			deadline = closedTime
		}
	}
	// Those that did not park in time stay here.
	for _, s := range stuck {
		s.resume <- true
	}
	resumeAll := func() {
		for _, s := range parked {
			s.resume <- true
		}
	}

	var files []*os.File
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		resumeAll()
		return 0, len(all), err
	}
	defer readyR.Close()
	keyR, keyW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		resumeAll()
		return 0, len(all), err
	}
	files = append(files, readyW, keyR)
	var states []string
	for _, s := range parked {
		cf, err1 := s.client.File()
		bf, err2 := s.backend.File()
		if err1 != nil || err2 != nil {
			if cf != nil {
				cf.Close()
			}
			if bf != nil {
				bf.Close()
			}
			closeFiles()
			keyW.Close()
			resumeAll()
			return 0, len(all), fmt.Errorf("restart: duplicating sockets: %v %v", err1, err2)
		}
		files = append(files, cf, bf)
		states = append(states, bit(s.c2bDone.Load())+bit(s.b2cDone.Load()))
	}
	cmd, err := restartCommand()
	if err != nil {
		closeFiles()
		keyW.Close()
		resumeAll()
		return 0, len(all), err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), restartEnv+"="+strings.Join(states, ","))
	err = cmd.Start()
	closeFiles() // the child has its copies
	if err == nil && key != nil {
		b := key.Bytes()
		keyW.Write(b[:])
	}
	keyW.Close()
	if err != nil {
		resumeAll()
		return 0, len(all), fmt.Errorf("restart: starting the new process: %w", err)
	}
	go cmd.Wait() // reap it should it fail; it outlives us otherwise
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(readyR).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(readyTimeout):
		err = errors.New("no answer")
	}
	if err != nil {
		cmd.Process.Kill()
		resumeAll()
		return 0, len(all), fmt.Errorf("restart: the new process (pid %d) did not take over: %w", cmd.Process.Pid, err)
	}
	for _, s := range parked {
		s.resume <- false
	}
	log.Info("graceful restart: the new process took over", "pid", cmd.Process.Pid,
		"connections_moved", len(parked), "connections_draining", len(stuck))
	return len(parked), len(stuck), nil
}

var closedTime = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ringFor returns the cookie ring and, when the daemon made its own key,
// that key: a graceful restart passes it on so that handshakes in flight
// complete. A key file or a fleet secret is read again by the new process.
func (o *runOptions) ringFor(in *inheritance) (*cookie.Ring, *cookie.Key, error) {
	if o.keyFile != "" || o.fleetFile != "" || o.rotate != 0 {
		r, err := o.ring()
		return r, nil, err
	}
	var k cookie.Key
	if in != nil && in.key != nil {
		k = *in.key
	} else {
		var err error
		if k, err = cookie.GenerateKey(); err != nil {
			return nil, nil, err
		}
	}
	r, err := cookie.NewRing(&cookie.RingConfig{Key: &k})
	return r, &k, err
}
