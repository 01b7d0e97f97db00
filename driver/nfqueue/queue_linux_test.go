package nfqueue

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// TestQueueReceive queues UDP datagrams sent over loopback in a fresh
// network namespace and reads them through the driver: every datagram
// arrives once with its payload, accepted ones reach the receiving socket
// and dropped ones do not, and the receive and verdict path allocates
// nothing per packet.
func TestQueueReceive(t *testing.T) {
	l := netlabtest.New(t, "spnfqr")
	ns, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	var d *Driver
	var tx, rx int
	err = ns.Do(func() error {
		if err := queueUDP(9999, 3); err != nil {
			t.Fatalf("nft: %v", err)
		}
		var err error
		if d, err = Open(&Config{QueueNum: 3, BatchSize: 8}); err != nil {
			return err
		}
		if rx, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0); err != nil {
			return err
		}
		if err = unix.Bind(rx, &unix.SockaddrInet4{Port: 9999, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		if tx, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0); err != nil {
			return err
		}
		return unix.Connect(tx, &unix.SockaddrInet4{Port: 9999, Addr: [4]byte{127, 0, 0, 1}})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rx)
	defer unix.Close(tx)
	defer d.Close()
	q := d.Queues()[0]
	pkts := make([]driver.Packet, q.BatchSize())
	payload := []byte("synproxy")
	buf := make([]byte, 64)
	// One datagram per round: accepted on even rounds, dropped on odd.
	round := 0
	step := func() {
		if _, err := unix.Write(tx, payload); err != nil {
			t.Fatal(err)
		}
		n, err := q.ReadBatch(pkts)
		for n == 0 && err == nil {
			n, err = q.ReadBatch(pkts)
		}
		if err != nil || n != 1 {
			t.Fatalf("ReadBatch: %d, %v", n, err)
		}
		p := pkts[0].Data
		if len(p) != 20+8+len(payload) || !bytes.HasSuffix(p, payload) || pkts[0].Link != driver.LinkIP {
			t.Fatalf("packet % x", p)
		}
		accept := round%2 == 0
		pkts[0].Verdict = driver.VerdictDrop
		if accept {
			pkts[0].Verdict = driver.VerdictAccept
		}
		if err := q.Release(pkts[:1]); err != nil {
			t.Fatal(err)
		}
		round++
	}
	for range 4 {
		step()
	}
	got := 0
	for {
		if _, _, err := unix.Recvfrom(rx, buf, 0); err != nil {
			break
		}
		got++
	}
	if got != 2 {
		t.Errorf("%d datagrams reached the socket, want the 2 accepted", got)
	}
	if a := testing.AllocsPerRun(200, step); a != 0 {
		t.Errorf("%v allocations per packet received and released, want 0", a)
	}
	if st := d.Stats(); st.Overruns != 0 || st.RxErrors != 0 || st.Skipped.Truncated != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.ReadBatch(pkts); err != driver.ErrClosed {
		t.Errorf("ReadBatch after Close: %v, want ErrClosed", err)
	}
}

// TestCloseWakesReader closes a queue while its reader is blocked in poll:
// ReadBatch returns ErrClosed.
func TestCloseWakesReader(t *testing.T) {
	l := netlabtest.New(t, "spnfqc")
	ns, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	var d *Driver
	if err := ns.Do(func() (e error) { d, e = Open(&Config{QueueNum: 4}); return }); err != nil {
		t.Fatal(err)
	}
	q := d.Queues()[0]
	done := make(chan error)
	go func() {
		pkts := make([]driver.Packet, q.BatchSize())
		for {
			n, err := q.ReadBatch(pkts)
			if err != nil || n > 0 {
				done <- err
				return
			}
		}
	}()
	q.(driver.Waker).Wake()
	d.Close()
	if err := <-done; err != driver.ErrClosed {
		t.Errorf("ReadBatch: %v, want ErrClosed", err)
	}
}

// queueUDP adds, in the calling thread's network namespace, an output rule
// queueing UDP datagrams to port to queue num: the xt NFQUEUE target, which
// every kernel with nft_compat has.
func queueUDP(port, num uint16) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	tb := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "t"})
	ch := c.AddChain(&nftables.Chain{Name: "o", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter})
	info := make(xt.Unknown, 6)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
		&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info},
	}})
	return c.Flush()
}
