// Package nfqueue is the netfilter-queue driver: packets come from the
// kernel's nfnetlink_queue through github.com/florianl/go-nfqueue/v2, one
// netlink socket per queue, verdicts go back in batches, and new packets
// (SYN-ACKs) leave on raw IP sockets with sendmmsg (driver/internal/rawsock).
// Its queues' link type is driver.LinkIP: packets start with their IP
// header, on receive and on transmit.
//
// Several queues are balanced by the nft rule (queue num A-B, a flow hash),
// one worker per queue. The queues are opened with the kernel's fail-open
// flag when asked: a packet that finds the queue full is accepted instead of
// dropped. Receive buffer overruns (ENOBUFS: the kernel could not deliver a
// packet to the socket) are survived and counted.
//
// A queue that another process has bound (another synproxy-lite, or a
// firewall tool using NFQUEUE) fails Open with a *QueueBusyError
// (errors.Is(err, ErrQueueBusy)) naming the queue and the netlink port that
// holds it. The kernel refuses that bind with EPERM, the errno of a missing
// capability too, so the driver looks the queue up in the kernel's table of
// bound queues before saying which it is.
//
// go-nfqueue allocates for every packet it parses; this driver adds no
// allocation of its own per packet on receive, verdict or transmit.
package nfqueue
