// Package nfqueue is the netfilter-queue driver: packets come from the
// kernel's nfnetlink_queue, one netlink socket per queue read directly
// (golang.org/x/sys/unix): one recvmmsg(2) takes a batch of packet messages
// into slots allocated once, and they are parsed in place. The verdicts of
// a batch go back in one write, runs of equal verdicts as one
// NFQNL_MSG_VERDICT_BATCH, and new packets (SYN-ACKs) leave on raw IP
// sockets with sendmmsg (driver/internal/rawsock).
// Its queues' link type is driver.LinkIP: packets start with their IP
// header, on receive and on transmit.
//
// Several queues are balanced by the nft rule (queue num A-B: a hash of the
// packet's addresses, not its ports), one worker per queue. The queues are opened with the kernel's fail-open
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
// Receive, verdict and transmit allocate nothing per packet (a netlink
// library decoding attributes into fresh values would allocate for each).
// The kernel copies whole packets (the engine needs the data that rides on
// a handshake ACK); a packet longer than the copy range (only on a
// loopback-sized MTU) is accepted unread and counted as truncated.
package nfqueue
