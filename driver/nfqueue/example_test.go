package nfqueue_test

import (
	"log"

	"github.com/synproxy-lite/synproxy-lite/driver/nfqueue"
)

// Open binds netfilter queues 100 and 101 (an nft rule must send packets
// to them, see driver/nft) and opens the raw sockets replies leave on; it
// needs CAP_NET_ADMIN and CAP_NET_RAW. Each queue is served by one worker.
func ExampleOpen() {
	d, err := nfqueue.Open(&nfqueue.Config{QueueNum: 100, Queues: 2, FailOpen: true})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	for _, q := range d.Queues() {
		log.Println("queue of", q.BatchSize(), "packets")
	}
}
