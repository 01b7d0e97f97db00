package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// Graceful restart.
//
// The old process parks every splice at a clean point (handoff.Proxy's
// HandOver), releases its queues (the nft table stays, so packets of open
// connections keep going straight to their sockets) and starts the new
// process (RestartCommand), which inherits, as extra files:
//
//	fd 3      a pipe it writes "ready\n" to once its queues and rules are up
//	fd 4      a pipe carrying the cookie key (32 bytes) when the Server made
//	          its own, so handshakes in flight complete
//	fd 5, 6   client and backend socket of the first splice, and so on
//
// and the environment variable restartEnv, which says how many splices
// follow and which of their directions have already ended ("10,00": two
// splices, the first one's client finished sending). Once the new process
// is ready, the old one closes its copies of the sockets and stops without
// removing the table. Splices that cannot be parked within parkTimeout (a
// write blocked on a slow peer) stay with the old process, which serves
// them to their end before it stops. If the new process fails to come up,
// the old one resumes everything and carries on.
const (
	restartEnv   = "SYNPROXY_LITE_INHERIT"
	parkTimeout  = 5 * time.Second
	readyTimeout = 20 * time.Second
)

// inheritance is what a process started by a graceful restart received.
type inheritance struct {
	ready *os.File
	key   *cookie.Key
	conns []handoff.Parked
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
		return nil, fmt.Errorf("proxy: restart: reading the key: %w", err)
	}
	if len(kb) == cookie.KeySize {
		k, err := cookie.NewKey(kb)
		if err != nil {
			return nil, fmt.Errorf("proxy: restart: %w", err)
		}
		in.key = &k
	}
	if v == "" {
		return in, nil
	}
	for i, st := range strings.Split(v, ",") {
		if len(st) != 2 {
			return nil, fmt.Errorf("proxy: restart: bad %s entry %q", restartEnv, st)
		}
		in.conns = append(in.conns, handoff.Parked{
			Client: os.NewFile(uintptr(5+2*i), "client"), Backend: os.NewFile(uintptr(6+2*i), "backend"),
			ClientDone: st[0] == '1', BackendDone: st[1] == '1'})
	}
	return in, nil
}

// signalReady tells the old process that this one has taken over.
func (in *inheritance) signalReady() {
	if in != nil && in.ready != nil {
		in.ready.WriteString("ready\n")
		in.ready.Close()
		in.ready = nil
	}
}

// restartCommand is this program's executable with the same arguments.
func restartCommand() (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, os.Args[1:]...), nil
}

// handOver starts the new process with the parked splices and waits until
// it is ready.
func (s *Server) handOver() (moved, kept, pid int, err error) {
	newCmd := s.cfg.RestartCommand
	if newCmd == nil {
		newCmd = restartCommand
	}
	moved, kept, err = s.px.HandOver(parkTimeout, func(conns []handoff.Parked) error {
		readyR, readyW, err := os.Pipe()
		if err != nil {
			return err
		}
		defer readyR.Close()
		keyR, keyW, err := os.Pipe()
		if err != nil {
			readyW.Close()
			return err
		}
		files := []*os.File{readyW, keyR}
		var states []string
		for _, c := range conns {
			files = append(files, c.Client, c.Backend)
			states = append(states, bit(c.ClientDone)+bit(c.BackendDone))
		}
		cmd, err := newCmd()
		if err == nil {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
			cmd.ExtraFiles = files
			cmd.Env = append(os.Environ(), restartEnv+"="+strings.Join(states, ","))
			err = cmd.Start()
		}
		readyW.Close() // the child has its copies
		keyR.Close()
		if err == nil && s.key != nil {
			b := s.key.Bytes()
			keyW.Write(b[:])
		}
		keyW.Close()
		if err != nil {
			return fmt.Errorf("proxy: restart: starting the new process: %w", err)
		}
		pid = cmd.Process.Pid
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
			return fmt.Errorf("proxy: restart: the new process (pid %d) did not take over: %w", pid, err)
		}
		return nil
	})
	return moved, kept, pid, err
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
