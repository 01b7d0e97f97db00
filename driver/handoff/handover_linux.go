package handoff

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// HandOver passes the open connections to another process. It pauses
// every splice at a clean point (reads interrupted, a write in progress
// finished, so no byte sits in a buffer here) and calls start with the
// ones that stopped within timeout, their sockets duplicated into files.
// start runs the other process, which takes the connections on with
// Adopt, and returns nil once that process has done so. The parked
// splices then end here (the other process holds the sockets) and HandOver
// returns how many moved. Splices that did not stop in time (a write
// blocked on a slow peer) go on here: kept counts them, and Wait waits for
// them. If start fails, every splice resumes here. HandOver closes the
// files when start returns.
func (p *Proxy) HandOver(timeout time.Duration, start func(conns []Parked) error) (moved, kept int, err error) {
	parked, kept := p.park(timeout)
	resume := func() {
		for _, s := range parked {
			s.resume <- true
		}
	}
	conns := make([]Parked, 0, len(parked))
	defer func() {
		for _, c := range conns {
			c.Client.Close()
			c.Backend.Close()
		}
	}()
	for _, s := range parked {
		cf, err1 := connFile(s.a)
		bf, err2 := connFile(s.b)
		if err := errors.Join(err1, err2); err != nil {
			if cf != nil {
				cf.Close()
			}
			if bf != nil {
				bf.Close()
			}
			resume()
			return 0, len(parked) + kept, &OpError{Op: "duplicating sockets", Err: err}
		}
		s.mu.Lock()
		conns = append(conns, Parked{Client: cf, Backend: bf, ClientDone: s.aDone, BackendDone: s.bDone})
		s.mu.Unlock()
	}
	if err := start(conns); err != nil {
		resume()
		return 0, len(parked) + kept, err
	}
	for _, s := range parked {
		s.resume <- false
	}
	return len(parked), kept, nil
}

// Adopt takes on connections another process passed with HandOver: it
// makes connections of their files (and closes the files) and splices
// each, with the directions that had ended left ended. If a file is not a
// stream socket, Adopt closes them all and starts none.
func (p *Proxy) Adopt(conns []Parked) error {
	p.init()
	var errs []error
	splices := make([]*splice, 0, len(conns))
	for i, c := range conns {
		a, err1 := fileConn(c.Client)
		b, err2 := fileConn(c.Backend)
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, fmt.Errorf("connection %d: %w", i, err))
			continue
		}
		s := newSplice(a)
		s.b, s.aDone, s.bDone = b, c.ClientDone, c.BackendDone
		splices = append(splices, s)
	}
	p.mu.Lock()
	if p.closed {
		errs = append(errs, ErrClosed)
	}
	if len(errs) > 0 {
		p.mu.Unlock()
		for _, s := range splices {
			s.closeBoth()
		}
		return &OpError{Op: "adopt", Err: errors.Join(errs...)}
	}
	p.wg.Add(len(splices))
	p.mu.Unlock()
	for _, s := range splices {
		client, _ := addrPort(s.a.RemoteAddr())
		p.start(s, client, false)
	}
	return nil
}

// connFile duplicates the socket of c into a file.
func connFile(c net.Conn) (*os.File, error) {
	f, ok := c.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("%T has no file", c)
	}
	return f.File()
}

// fileConn makes a connection of f, a stream socket, and closes f.
func fileConn(f *os.File) (net.Conn, error) {
	if f == nil {
		return nil, errors.New("no file")
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	if _, ok := c.(interface{ CloseWrite() error }); !ok {
		c.Close()
		return nil, fmt.Errorf("%s is not a stream socket", f.Name())
	}
	return c, nil
}
