package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// The restart channel: a unix SOCK_SEQPACKET socket pair between the old
// process and the new one (fd 3 in the new), one record per message, the
// first byte its type:
//
//	old -> new  'H' queue(2) keylen(1) key   hello: the first queue number the new
//	                                         process binds, the cookie key (or none)
//	new -> old  'S'                          serving: its queues are bound and the
//	                                         rules send the port's packets to them
//	old -> new  'M'                          the old process released what OnEngine
//	                                         made (a metrics address)
//	new -> old  'O'                          OnEngine succeeded
//	old -> new  'C' state...  + 2n fds       up to connBatch parked connections:
//	                                         a state byte each (bit 0: the client's
//	                                         direction ended, bit 1: the backend's),
//	                                         client and backend sockets by SCM_RIGHTS
//	new -> old  'A'                          that batch arrived
//	old -> new  'E' total(4)                 no more connections
//	new -> old  'R'                          the new process has them all
//	old -> new  'K'                          the old process commits: the new one
//	                                         adopts them and has taken over (without
//	                                         it, the old one gave up and resumed them)
//
// Each batch is acknowledged before the next goes, so at most one batch
// of descriptors is in flight (the kernel bounds descriptors in flight per
// user by RLIMIT_NOFILE).
const (
	msgHello    = 'H'
	msgServing  = 'S'
	msgReleased = 'M'
	msgOnEngine = 'O'
	msgConns    = 'C'
	msgAck      = 'A'
	msgEnd      = 'E'
	msgReady    = 'R'
	msgCommit   = 'K'

	// connBatch is the most connections in one message: two descriptors
	// each, within the kernel's SCM_MAX_FD (253) per message.
	connBatch = 126
)

// errChannel is a restart channel that broke or carried something
// unexpected.
var errChannel = errors.New("proxy: restart: bad message on the restart channel")

// channel is one end of the restart channel.
type channel struct {
	c   *net.UnixConn
	buf []byte
	oob []byte
}

func newChannel(c *net.UnixConn) *channel {
	return &channel{c: c, buf: make([]byte, 1+connBatch+64), oob: make([]byte, unix.CmsgSpace(2*connBatch*4))}
}

// socketPair returns the old process's end of a new restart channel and
// the file the new process inherits.
func socketPair() (*channel, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: restart: socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "restart"), os.NewFile(uintptr(fds[1]), "restart")
	ch, err := fileChannel(ours)
	if err != nil {
		theirs.Close()
		return nil, nil, err
	}
	return ch, theirs, nil
}

// fileChannel makes a channel of f (and closes f).
func fileChannel(f *os.File) (*channel, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("proxy: restart: the restart channel: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("proxy: restart: the restart channel is a %T", c)
	}
	return newChannel(uc), nil
}

func (ch *channel) Close() error { return ch.c.Close() }

func (ch *channel) send(b []byte, fds []int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := ch.c.WriteMsgUnix(b, oob, nil); err != nil {
		return fmt.Errorf("proxy: restart: sending: %w", err)
	}
	return nil
}

// recv reads one message and the descriptors that came with it.
func (ch *channel) recv() ([]byte, []int, error) {
	n, oobn, flags, _, err := ch.c.ReadMsgUnix(ch.buf, ch.oob)
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: restart: receiving: %w", err)
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(ch.oob[:oobn])
		if err != nil {
			return nil, nil, fmt.Errorf("proxy: restart: %w", err)
		}
		for _, m := range msgs {
			f, err := unix.ParseUnixRights(&m)
			if err == nil {
				fds = append(fds, f...)
			}
		}
	}
	if n == 0 {
		closeFDs(fds)
		return nil, nil, fmt.Errorf("proxy: restart: the other process closed the restart channel")
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		closeFDs(fds)
		return nil, nil, errChannel
	}
	return ch.buf[:n], fds, nil
}

// expect reads a message of type t without descriptors.
func (ch *channel) expect(t byte) ([]byte, error) {
	b, fds, err := ch.recv()
	if err != nil {
		return nil, err
	}
	if b[0] != t || len(fds) > 0 {
		closeFDs(fds)
		return nil, fmt.Errorf("%w: %q, want %q", errChannel, b[0], t)
	}
	return b[1:], nil
}

func (ch *channel) signal(t byte) error { return ch.send([]byte{t}, nil) }

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// hello is the first message: the queue the new process starts at, and
// the key.
func (ch *channel) sendHello(queue uint16, key *cookie.Key) error {
	b := binary.BigEndian.AppendUint16([]byte{msgHello}, queue)
	if key != nil {
		k := key.Bytes()
		b = append(append(b, byte(len(k))), k[:]...)
	} else {
		b = append(b, 0)
	}
	return ch.send(b, nil)
}

func (ch *channel) recvHello() (queue uint16, key *cookie.Key, err error) {
	b, err := ch.expect(msgHello)
	if err != nil {
		return 0, nil, err
	}
	if len(b) < 3 || len(b) != 3+int(b[2]) {
		return 0, nil, fmt.Errorf("%w: hello of %d bytes", errChannel, len(b))
	}
	queue = binary.BigEndian.Uint16(b)
	if b[2] > 0 {
		k, err := cookie.NewKey(b[3:])
		if err != nil {
			return 0, nil, fmt.Errorf("proxy: restart: %w", err)
		}
		key = &k
	}
	return queue, key, nil
}

// sendConns passes conns in batches, each acknowledged, then the end.
func (ch *channel) sendConns(conns []handoff.Parked) error {
	total := uint32(len(conns))
	msg := make([]byte, 0, 1+connBatch)
	fds := make([]int, 0, 2*connBatch)
	for len(conns) > 0 {
		batch := conns[:min(len(conns), connBatch)]
		conns = conns[len(batch):]
		msg, fds = append(msg[:0], msgConns), fds[:0]
		for _, c := range batch {
			var st byte
			if c.ClientDone {
				st |= 1
			}
			if c.BackendDone {
				st |= 2
			}
			msg = append(msg, st)
			fds = append(fds, int(c.Client.Fd()), int(c.Backend.Fd()))
		}
		if err := ch.send(msg, fds); err != nil {
			return err
		}
		if _, err := ch.expect(msgAck); err != nil {
			return err
		}
	}
	return ch.send(binary.BigEndian.AppendUint32([]byte{msgEnd}, total), nil)
}

// recvConns receives the connections sendConns passes, giving each to
// each (which owns its files), and returns how many came.
func (ch *channel) recvConns(each func(handoff.Parked)) (int, error) {
	total := 0
	for {
		b, fds, err := ch.recv()
		if err != nil {
			return total, err
		}
		switch {
		case b[0] == msgEnd && len(b) == 5 && len(fds) == 0:
			if int(binary.BigEndian.Uint32(b[1:])) != total {
				return total, fmt.Errorf("%w: %d connections, %d announced", errChannel, total, binary.BigEndian.Uint32(b[1:]))
			}
			return total, nil
		case b[0] != msgConns || len(fds) != 2*(len(b)-1):
			closeFDs(fds)
			return total, fmt.Errorf("%w: %q with %d descriptors", errChannel, b[0], len(fds))
		}
		for i, st := range b[1:] {
			each(handoff.Parked{
				Client:     os.NewFile(uintptr(fds[2*i]), "client"),
				Backend:    os.NewFile(uintptr(fds[2*i+1]), "backend"),
				ClientDone: st&1 != 0, BackendDone: st&2 != 0})
		}
		total += len(b) - 1
		if err := ch.signal(msgAck); err != nil {
			return total, err
		}
	}
}
