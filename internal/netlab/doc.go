// Package netlab builds small networks of Linux network namespaces for
// the tests, the benchmark, the demo and the kernel parity harness's guest:
// namespaces joined by veth pairs (optionally as ports of a bridge), IPv4
// and IPv6 addresses, routes, neighbour entries and per-namespace sysctls,
// the kernel's nftables synproxy ruleset, AF_PACKET sockets for whole
// frames, and ways to run Go code and commands inside a namespace. It is
// the project's one lab: nothing else creates namespaces or links.
//
// It needs nothing outside the binary, so that it also runs as /init of a
// minimal machine: links, addresses, routes and neighbours are programmed
// over NETLINK_ROUTE, the ruleset over NETLINK_NETFILTER (a kernel under
// test may lack other netlink families), sysctls are written under
// /proc/sys, and namespaces are created with unshare(2).
//
// # Namespaces
//
// A namespace is created on a locked OS thread with unshare(CLONE_NEWNET)
// and bind-mounted at /run/netns/NAME, as ip-netns(8) does, so that
// `ip netns exec NAME ...` and `ip -n NAME ...` work on it too. Every name
// starts with the lab's prefix, then the creating process id (base 36), a
// random suffix and the namespace's role:
//
//	splh-2n9c-a1b2-cli
//
// Sweep removes the namespaces of a prefix whose creating process is gone,
// which is what a run that crashed leaves behind; Lab.Close removes the
// lab's own. Deleting the mount is all it takes: the kernel then destroys
// the namespace together with its interfaces, addresses and routes.
//
// # Running code inside a namespace
//
// NS.Do runs a function on the calling goroutine after locking it to its OS
// thread and switching that thread into the namespace with setns(2); the
// thread switches back afterwards. Network namespaces belong to threads, so:
//
//   - sockets are bound to the namespace of the thread that created them:
//     a net.Listener or net.Conn created inside Do keeps working in that
//     namespace after Do returns, from any goroutine;
//   - goroutines started inside Do run on other threads, in whatever
//     namespace those threads are in (the process's original one), so
//     they must not create sockets;
//   - net.Dial with a host name may resolve it to several addresses and
//     race them on new goroutines: dial IP literals inside a namespace.
//     NS.DialContext (usable as http.Transport.DialContext) and NS.Listen
//     do the socket creation inside the namespace for you;
//   - /proc/sys/net/... refers to the namespace of the thread that opens
//     it, while /proc/net and /proc/self/net follow the process's main
//     thread; NS.SetSysctl opens the file inside the namespace.
//
// If switching back fails the thread stays locked, and Go ends it when the
// goroutine exits, so a thread in the wrong namespace is never reused.
//
// # Commands
//
// NS.Start and NS.Run start an *exec.Cmd from a thread inside the
// namespace; the child inherits the namespace (the way nsenter(1) does
// it, without a mount namespace: /sys still shows the parent's view,
// which tools that read /sys/class/net may notice; for those, run
// `ip netns exec NS.Name() ...` instead).
//
// # Privileges
//
// Creating namespaces and mounting needs CAP_SYS_ADMIN; links, addresses,
// routes and rulesets need CAP_NET_ADMIN in the namespace, packet sockets
// CAP_NET_RAW. In practice: root. Errors that come from missing privileges
// say so.
//
// Package netlabtest wraps the lab for tests (cleanup, stale namespaces,
// a loud skip without root).
package netlab
