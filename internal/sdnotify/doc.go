// Package sdnotify tells the service manager how the daemon stands: the
// sd_notify(3) protocol, one datagram of newline-separated KEY=VALUE
// assignments sent to the unix socket named by $NOTIFY_SOCKET (a path, or
// an abstract socket written with a leading '@').
//
// Without $NOTIFY_SOCKET, as outside systemd or in a unit whose Type= is
// not notify, Notify sends nothing and reports so; it is never an error to
// call it. The package keeps the daemon free of a systemd library: the
// protocol is a single sendto.
//
// The states the daemon sends:
//
//	READY=1           serving (at start, and after a reload)
//	RELOADING=1       a reload began (with MONOTONIC_USEC=, the time it did)
//	STOPPING=1        shutting down
//	MAINPID=N         the process that serves from now on (graceful restart)
//	STATUS=...        one line for systemctl status
package sdnotify
