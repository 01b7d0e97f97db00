package driver_test

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// A worker's loop over one queue: receive a burst, decide each packet's
// verdict, transmit the replies, release the burst.
func Example() {
	serve := func(q driver.Queue, decide func(p *driver.Packet, tx [][]byte) [][]byte) error {
		pkts := make([]driver.Packet, q.BatchSize())
		tx := make([][]byte, 0, q.BatchSize())
		for {
			n, err := q.ReadBatch(pkts)
			if errors.Is(err, driver.ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			tx = tx[:0]
			for i := range pkts[:n] {
				tx = decide(&pkts[i], tx) // sets pkts[i].Verdict
			}
			if _, err := q.WriteBatch(tx); err != nil {
				return err
			}
			if err := q.Release(pkts[:n]); err != nil {
				return err
			}
		}
	}
	_ = serve
}

// OpError names the operation that failed and says which capabilities a
// refused one needs.
func ExampleOpError() {
	err := driver.NewOpError("open nfqueue 100", syscall.EPERM)
	fmt.Println(err)
	fmt.Println(errors.Is(err, syscall.EPERM))
	// Output:
	// driver: open nfqueue 100: operation not permitted (needs CAP_NET_ADMIN and CAP_NET_RAW)
	// true
}

// A packet's link type says what precedes its IP header.
func ExampleLink() {
	p := driver.Packet{Link: driver.LinkEthernet}
	fmt.Println(p.Link, driver.LinkIP, p.Verdict)
	// Output: ethernet ip drop
}
