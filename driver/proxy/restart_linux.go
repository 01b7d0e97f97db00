package proxy

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// Graceful restart.
//
// The old process starts the new one (RestartCommand) with one extra
// file, fd 3, its end of the restart channel (a unix SOCK_SEQPACKET
// socket pair, see restartwire_linux.go), and restartEnv set to say so.
// The old process's engine keeps serving its queues all along; the new
// process binds the other range of queues (Queue+Workers and up, then
// back again at the next restart), and the rules move from one range to
// the other in one nft transaction. Step by step:
//
//  1. old: hello (the new process's queues, the cookie key when the
//     Server made its own, so handshakes in flight complete);
//  2. new: binds its queues, runs its engine, replaces the rules with its
//     own (one transaction: no moment without rules), says "serving";
//  3. old: releases what OnEngine made (the metrics address), says so;
//  4. new: runs OnEngine, says so;
//  5. old: parks the splices (handoff.Proxy's HandOver: a client that
//     stops reading holds this up to parkTimeout, but handshakes are
//     answered by the new process meanwhile) and passes them in batches
//     of descriptors (SCM_RIGHTS);
//  6. new: has them all, says "ready"; old: commits and says so, and
//     only then does the new process adopt them (so that a new process
//     the old one gave up on has read nothing from them). The old process
//     then stops its engine and serves only the splices it could not
//     park, to their end.
//
// Until the commit, the new process treats the rules as inherited: if it
// fails, it puts them back on the old process's queues and never removes
// them. The old process, when the new one fails or does not answer
// within readyTimeout, kills it, waits for it to exit, puts its rules
// back (whatever the new process did), resumes its splices and carries
// on.
const (
	restartEnv   = "SYNPROXY_LITE_INHERIT"
	restartFD    = "fd3" // restartEnv's value: the restart channel is fd 3
	parkTimeout  = 5 * time.Second
	readyTimeout = 20 * time.Second
)

// inheritance is what a process started by a graceful restart received.
type inheritance struct {
	ch    *channel
	queue uint16
	key   *cookie.Key
}

// inherited reads restartEnv and the hello on the restart channel; nil
// when the process was not started by a graceful restart.
func inherited() (*inheritance, error) {
	v, ok := os.LookupEnv(restartEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(restartEnv)
	if v != restartFD {
		return nil, fmt.Errorf("proxy: restart: %s=%q: started by an incompatible version", restartEnv, v)
	}
	ch, err := fileChannel(os.NewFile(3, "restart"))
	if err != nil {
		return nil, err
	}
	q, key, err := ch.recvHello()
	if err != nil {
		ch.Close()
		return nil, err
	}
	return &inheritance{ch: ch, queue: q, key: key}, nil
}

// takeOver is the new process's side of a graceful restart, once it has
// its Proxy and its ring: steps 2, 4 and 6.
func (s *Server) takeOver() error {
	in, c := s.in, &s.cfg
	switch in.queue {
	case c.Queue + uint16(c.Workers):
		s.rs.alternate = true
	case c.Queue:
	default:
		return fmt.Errorf("proxy: restart: told to use queue %d, not %d or %d", in.queue, c.Queue, c.Queue+uint16(c.Workers))
	}
	if err := s.startEngine(); err != nil {
		return err
	}
	s.rs.inherited = true
	nc := s.nftConfig()
	rules, err := nft.Replace(nc)
	if err != nil {
		return err
	}
	s.rules = rules
	s.log.Info("graceful restart: nft rules moved to this process's queues", "table", "inet "+nc.Table,
		"queueing", rules.Method.String(), "queues", fmt.Sprintf("%d-%d", nc.QueueNum, int(nc.QueueNum)+c.Workers-1))
	if err := in.ch.signal(msgServing); err != nil {
		return err
	}
	if _, err := in.ch.expect(msgReleased); err != nil {
		return err
	}
	if err := s.serveEngine(); err != nil {
		return err
	}
	if err := in.ch.signal(msgOnEngine); err != nil {
		return err
	}
	var conns []handoff.Parked
	n, err := in.ch.recvConns(func(p handoff.Parked) { conns = append(conns, p) })
	if err != nil {
		for _, p := range conns {
			p.Client.Close()
			p.Backend.Close()
		}
		return err
	}
	// The old process alone decides; no commit means it gave up and
	// resumed the connections, which this process then never touched.
	err = in.ch.signal(msgReady)
	if err == nil {
		_, err = in.ch.expect(msgCommit)
	}
	if err != nil {
		for _, p := range conns {
			p.Client.Close()
			p.Backend.Close()
		}
		return fmt.Errorf("proxy: restart: the old process did not confirm: %w", err)
	}
	if err := s.px.Adopt(conns); err != nil {
		return err
	}
	s.rs.inherited = false
	in.ch.Close()
	s.watchTable()
	s.watchOnDemand()
	s.log.Info("graceful restart: adopted the open connections", "connections", n)
	s.logRunning()
	return nil
}

// restoreInherited puts the rules back on the other range of queues, the
// old process's.
func (s *Server) restoreInherited() {
	nc := s.nftConfig()
	nc.QueueNum = s.otherQueueBase()
	if _, err := nft.Replace(nc); err != nil {
		s.log.Error("graceful restart: putting back the inherited nft rules", "table", "inet "+nc.Table, "err", err)
		return
	}
	s.log.Info("graceful restart: nft rules put back on the old process's queues", "table", "inet "+nc.Table,
		"queues", fmt.Sprintf("%d-%d", nc.QueueNum, int(nc.QueueNum)+s.cfg.Workers-1))
}

func (s *Server) otherQueueBase() uint16 {
	if s.rs.alternate {
		return s.cfg.Queue
	}
	return s.cfg.Queue + uint16(s.cfg.Workers+s.provenQueues())
}

// restartCommand is this program's executable with the same arguments.
func restartCommand() (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, os.Args[1:]...), nil
}

// handOver is the old process's side: it starts the new process, takes
// it through the steps and, on a failure, puts everything back as it was.
// s.mu is held.
func (s *Server) handOver() (moved, kept, pid int, err error) {
	if int(s.cfg.Queue)+2*s.cfg.Workers > 65536 {
		return 0, 0, 0, errors.New("proxy: restart: Queue+2*Workers exceeds the queue numbers (a restart needs a second range)")
	}
	newCmd := s.cfg.RestartCommand
	if newCmd == nil {
		newCmd = restartCommand
	}
	cmd, err := newCmd()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("proxy: restart: %w", err)
	}
	ch, theirs, err := socketPair()
	if err != nil {
		return 0, 0, 0, err
	}
	defer ch.Close()
	// A driver that taps packets below netfilter has no queues to tell
	// apart: two engines would both answer. Its engine stops here, and
	// the new process's starts a moment later.
	if s.drv.Drop {
		s.stopEngine()
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Env = append(os.Environ(), restartEnv+"="+restartFD)
	err = cmd.Start()
	theirs.Close() // the child has its copy
	if err != nil {
		return 0, 0, 0, s.restartFailed(fmt.Errorf("proxy: restart: starting the new process: %w", err))
	}
	pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // reap it should it fail; it outlives us otherwise
	fail := func(err error) error {
		ch.Close()
		cmd.Process.Kill()
		<-exited // its rules are final once it is gone
		return s.restartFailed(fmt.Errorf("proxy: restart: the new process (pid %d) did not take over: %w", pid, err))
	}
	ch.c.SetDeadline(time.Now().Add(readyTimeout))
	if err := ch.sendHello(s.otherQueueBase(), s.key); err != nil {
		return 0, 0, pid, fail(err)
	}
	if _, err := ch.expect(msgServing); err != nil {
		return 0, 0, pid, fail(err)
	}
	if s.release != nil {
		s.release()
		s.release = nil
	}
	if err := ch.signal(msgReleased); err != nil {
		return 0, 0, pid, fail(err)
	}
	if _, err := ch.expect(msgOnEngine); err != nil {
		return 0, 0, pid, fail(err)
	}
	moved, kept, err = s.px.HandOver(parkTimeout, func(conns []handoff.Parked) error {
		ch.c.SetDeadline(time.Now().Add(readyTimeout))
		if err := ch.sendConns(conns); err != nil {
			return err
		}
		if _, err := ch.expect(msgReady); err != nil {
			return err
		}
		return ch.signal(msgCommit)
	})
	if err != nil {
		return 0, moved + kept, pid, fail(err)
	}
	s.stopEngine()
	return moved, kept, pid, nil
}

// restartFailed brings the old process back to where it was before the
// restart: its rules on its queues (whatever the new process did to
// them), its engine running, OnEngine's listener. It returns err, joined
// with what failed meanwhile.
func (s *Server) restartFailed(err error) error {
	nc := s.nftConfig()
	if rules, rerr := nft.Replace(nc); rerr != nil {
		err = errors.Join(err, rerr)
	} else {
		s.rules = rules
		s.log.Info("graceful restart: nft rules in place on this process's queues", "table", "inet "+nc.Table,
			"queues", fmt.Sprintf("%d-%d", nc.QueueNum, int(nc.QueueNum)+s.cfg.Workers-1))
	}
	if s.run == nil {
		if serr := s.startEngine(); serr != nil {
			select {
			case s.died <- serr:
			default:
			}
			return errors.Join(err, serr)
		}
	}
	if s.release == nil && s.cfg.OnEngine != nil {
		if serr := s.serveEngine(); serr != nil {
			s.log.Error("graceful restart: OnEngine", "err", serr)
		}
	}
	return err
}
