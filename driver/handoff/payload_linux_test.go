package handoff_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// TestPayloadOnACK: data that rides on the handshake ACK is not lost. A
// kernel client never sends data on its third handshake packet, so the
// client here is hand-made: raw sockets in the client namespace (whose
// kernel is kept from resetting the connection it does not know).
//
//   - ack-dropped: the ACK never reaches the server's kernel (the SYN proxy
//     consumed it); Materialise puts its payload in the receive queue.
//   - ack-after-socket: the socket exists (payload queued) before the ACK
//     is given to the kernel, as synproxy-lite's engine does; the kernel
//     drops the duplicate payload, and the application reads it once.
//   - ack-delivers-payload: the socket exists, without the payload, before
//     the ACK arrives; the kernel queues the ACK's payload itself.
func TestPayloadOnACK(t *testing.T) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		for _, mode := range []string{"ack-dropped", "ack-after-socket", "ack-delivers-payload"} {
			for _, ts := range []bool{true, false} {
				name := fmt.Sprintf("%s/%s/ts=%v", fam, mode, ts)
				t.Run(name, func(t *testing.T) { payloadCase(t, fam == "ipv6", mode, ts) })
			}
		}
	}
}

func payloadCase(t *testing.T, v6 bool, mode string, ts bool) {
	n := newTestNet(t)
	// The client's kernel would answer the server's segments with resets.
	n.nft(n.cli, `table inet splhc {
	chain out {
		type filter hook output priority 0;
		tcp flags & rst == rst drop
	}
}`)
	cliAddr, srvAddr := n.cli4, n.srv4
	if v6 {
		cliAddr, srvAddr = n.cli6, n.srv6
	}
	tapC, tapS := openTap(t, n.cli, "veth0"), openTap(t, n.srv, "veth0")
	cli := netip.AddrPortFrom(cliAddr, uint16(40000+rand.IntN(20000)))
	srvAP := netip.AddrPortFrom(srvAddr, port)

	isn := rand.Uint32()
	synSeg := seg{src: cli, dst: srvAP, seq: isn, flags: syn, win: 64240, mss: 1460, ws: 7, sackOK: true, ts: ts, tsval: 1_000_000}
	if err := send(n.cli, synSeg); err != nil {
		t.Fatal(err)
	}
	plan := synAckPlan{isn: rand.Uint32(), mss: 1460, ws: 7}
	syn_, synack, err := answerSYN(tapS, n.srv, plan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tapC.next(5*time.Second, func(s seg) bool { return s.flags == syn|ack && s.ack == isn+1 }); err != nil {
		t.Fatalf("client did not see the SYN-ACK: %v", err)
	}

	payload := append([]byte("payload on the handshake ACK: "), stream(4, 200)...)
	ackSeg := seg{src: cli, dst: srvAP, seq: isn + 1, ack: synack.seq + 1, flags: ack | psh, win: 502, ws: -1,
		ts: ts, tsval: 1_000_010, tsecr: synack.tsval, payload: payload}

	var h handoff.Handshake
	switch mode {
	case "ack-dropped":
		if err := send(n.cli, ackSeg); err != nil {
			t.Fatal(err)
		}
		got, err := tapS.next(5*time.Second, func(s seg) bool { return s.src == cli && s.flags&ack != 0 && s.flags&syn == 0 })
		if err != nil {
			t.Fatalf("server did not see the ACK: %v", err)
		}
		if !bytes.Equal(got.payload, payload) {
			t.Fatalf("captured ACK carries %d bytes, sent %d", len(got.payload), len(payload))
		}
		h = handshakeOf(syn_, synack, got)
	case "ack-after-socket", "ack-delivers-payload":
		h = handshakeOf(syn_, synack, ackSeg)
		if mode == "ack-delivers-payload" {
			h.Payload = nil
		}
	}
	var srv *net.TCPConn
	if err := n.srv.Do(func() (err error) { srv, err = handoff.Materialise(&h, &handoff.Config{Mark: mark}); return }); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetDeadline(time.Now().Add(20 * time.Second))
	if mode != "ack-dropped" {
		if err := send(n.cli, ackSeg); err != nil {
			t.Fatal(err)
		}
	}

	// The server acknowledges the payload, with an open window.
	end := isn + 1 + uint32(len(payload))
	wu, err := tapC.next(5*time.Second, func(s seg) bool { return s.src == srvAP && s.flags&ack != 0 && s.ack == end })
	if err != nil {
		t.Fatalf("no acknowledgement of the payload: %v", err)
	}
	if wu.seq != synack.seq+1 || wu.win == 0 || wu.ts != ts || (ts && wu.tsecr != ackSeg.tsval) {
		t.Errorf("acknowledgement %+v: want seq %d, a window, timestamps %v echoing %d", wu, synack.seq+1, ts, ackSeg.tsval)
	}

	// The application reads the payload, answers, and reads what follows.
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(srv, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("server read %q, %v", got, err)
	}
	resp := []byte("response to the payload")
	if _, err := srv.Write(resp); err != nil {
		t.Fatal(err)
	}
	data, err := tapC.next(5*time.Second, func(s seg) bool { return s.src == srvAP && len(s.payload) > 0 })
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	if data.seq != synack.seq+1 || data.ack != end || !bytes.Equal(data.payload, resp) {
		t.Errorf("response seq %d ack %d %q, want seq %d ack %d %q", data.seq, data.ack, data.payload, synack.seq+1, end, resp)
	}
	more := seg{src: cli, dst: srvAP, seq: end, ack: synack.seq + 1 + uint32(len(resp)), flags: ack | psh | fin, win: 502, ws: -1,
		ts: ts, tsval: 1_000_020, tsecr: data.tsval, payload: []byte("END")}
	if err := send(n.cli, more); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(srv)
	if err != nil || string(rest) != "END" {
		t.Errorf("after the payload the server read %q, %v; want exactly \"END\" (no duplicate)", rest, err)
	}
}
