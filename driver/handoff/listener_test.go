package handoff_test

import (
	"errors"
	"net"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

func pipeConn(t *testing.T) net.Conn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a
}

func TestListenerQueue(t *testing.T) {
	addr := &net.TCPAddr{Port: 8080}
	l := handoff.NewListener(addr, 2, nil)
	if l.Addr() != addr {
		t.Errorf("Addr = %v", l.Addr())
	}
	c1, c2, c3 := pipeConn(t), pipeConn(t), pipeConn(t)
	if err := l.Offer(c1); err != nil {
		t.Fatal(err)
	}
	if err := l.Offer(c2); err != nil {
		t.Fatal(err)
	}
	if err := l.Offer(c3); !errors.Is(err, handoff.ErrBacklog) {
		t.Errorf("third Offer with a backlog of 2: %v", err)
	}
	if _, err := c3.Write([]byte("x")); err == nil {
		t.Error("a refused connection was not closed")
	}
	for _, want := range []net.Conn{c1, c2} {
		if got, err := l.Accept(); err != nil || got != want {
			t.Errorf("Accept = %v, %v", got, err)
		}
	}
	// An invalid handshake fails before any socket and keeps the place.
	for range 3 {
		if err := l.Handoff(&handoff.Handshake{}); !errors.Is(err, handoff.ErrHandshake) {
			t.Errorf("Handoff of an empty handshake: %v", err)
		}
	}
	c4 := pipeConn(t)
	if err := l.Offer(c4); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c4.Write([]byte("x")); err == nil {
		t.Error("Close left a queued connection open")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if err := l.Offer(pipeConn(t)); !errors.Is(err, handoff.ErrClosed) {
		t.Errorf("Offer after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestHandshakeValidation(t *testing.T) {
	ok := func() handoff.Handshake {
		var h handoff.Handshake
		h.Tuple.Client = mustAP("10.99.1.1:40000")
		h.Tuple.Server = mustAP("10.99.1.2:8080")
		h.MSS = 1460
		return h
	}
	for name, mod := range map[string]func(*handoff.Handshake){
		"no client":      func(h *handoff.Handshake) { h.Tuple.Client = zeroAP },
		"mixed families": func(h *handoff.Handshake) { h.Tuple.Server = mustAP("[fd00::2]:8080") },
		"zero port":      func(h *handoff.Handshake) { h.Tuple.Client = mustAP("10.99.1.1:0") },
		"shift 15":       func(h *handoff.Handshake) { h.WScaleOK, h.ClientWScale = true, 15 },
		"zero MSS":       func(h *handoff.Handshake) { h.MSS = 0 },
	} {
		h := ok()
		mod(&h)
		if _, err := handoff.Materialise(&h, nil); !errors.Is(err, handoff.ErrHandshake) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
