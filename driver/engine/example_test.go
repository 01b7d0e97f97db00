package engine_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/nfqueue"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// The engine runs on a driver's queues and hands proven handshakes to a
// Handoff; nil rules mean the defaults of an nft "synproxy mss 1460 wscale 7
// timestamp sack-perm" statement (mss 1440 for IPv6).
func Example() {
	drv, err := nfqueue.Open(&nfqueue.Config{QueueNum: 100})
	if err != nil {
		log.Fatal(err) // needs CAP_NET_ADMIN
	}
	ring, err := cookie.NewRing(nil)
	if err != nil {
		log.Fatal(err)
	}
	e, err := engine.New(drv, &engine.Config{Port: 8080, Ring: ring,
		Handoff: engine.HandoffFunc(func(h *engine.Handshake) error {
			c, err := handoff.Materialise(h, nil)
			if err != nil {
				return err
			}
			go func() {
				defer c.Close()
				fmt.Fprintln(c, "hello")
			}()
			return nil
		})})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log.Println(e.Run(ctx))
}

// A rule spells what the SYN-ACKs offer, as an nft synproxy statement does:
// here "synproxy mss 1400 timestamp sack-perm", without window scaling.
func ExampleDefaultRule() {
	r := engine.DefaultRule(false)
	r.MSS, r.HasWScale = 1400, false
	cfg := engine.Config{Rule4: &r}
	fmt.Printf("mss %d wscale %v timestamp %v sack-perm %v ttl %d\n",
		cfg.Rule4.MSS, cfg.Rule4.HasWScale, cfg.Rule4.Timestamp, cfg.Rule4.SACKPerm, cfg.Rule4.TTL)
	six := engine.DefaultRule(true)
	fmt.Println("IPv6 mss", six.MSS, "ttl", six.TTL == packet.DefaultTTL)
	// Output:
	// mss 1400 wscale false timestamp true sack-perm true ttl 64
	// IPv6 mss 1440 ttl true
}
