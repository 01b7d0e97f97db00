package main

import (
	"flag"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/internal/config"
)

// limitFlags are the flags of "run" that bound the handed-over
// connections (handoff.Limits).
type limitFlags struct {
	maxConns, perSource    int
	prefix4, prefix6       int
	idle, keepAlive, userT time.Duration
	backendTimeout         time.Duration
	maxDials               int
}

func addLimitFlags(fs *flag.FlagSet) *limitFlags {
	l := &limitFlags{}
	fs.IntVar(&l.maxConns, "max-conns", 0, "most handed-over connections open at once; 0: derived from the descriptor limit "+
		"((RLIMIT_NOFILE - 128) / 6), -1: no limit")
	fs.IntVar(&l.perSource, "max-conns-per-source", 0, "most connections open at once from one source prefix (see --source-prefix4/6); 0: no limit")
	fs.IntVar(&l.prefix4, "source-prefix4", handoff.DefaultSourcePrefix4, "IPv4 prefix `bits` that make one source for --max-conns-per-source")
	fs.IntVar(&l.prefix6, "source-prefix6", handoff.DefaultSourcePrefix6, "IPv6 prefix `bits` that make one source for --max-conns-per-source")
	fs.DurationVar(&l.idle, "idle-timeout", 0, "close a connection after this `duration` without data either way; 0: never")
	fs.DurationVar(&l.keepAlive, "keepalive", handoff.DefaultKeepAlive, "TCP keepalive idle `time` on both sockets; 0: no keepalive")
	fs.DurationVar(&l.userT, "user-timeout", handoff.DefaultUserTimeout, "TCP_USER_TIMEOUT on both sockets: `duration` unacknowledged data may wait; 0: the kernel's")
	fs.DurationVar(&l.backendTimeout, "backend-timeout", handoff.DefaultDialTimeout, "`timeout` of the backend dial")
	fs.IntVar(&l.maxDials, "max-dials", handoff.DefaultMaxDials, "most backend dials in flight; further handshakes are refused until one ends; -1: no limit")
	return l
}

// config returns the limits the flags spell, for config.Config (which
// checks them, naming the flags).
func (l *limitFlags) config() config.Limits {
	return config.Limits{MaxConns: l.maxConns, MaxConnsPerSource: l.perSource, SourcePrefix4: l.prefix4,
		SourcePrefix6: l.prefix6, IdleTimeout: l.idle, KeepAlive: l.keepAlive, UserTimeout: l.userT,
		BackendTimeout: l.backendTimeout, MaxDials: l.maxDials}
}

// handoffLimits returns the handoff.Limits of a service's limits.
func handoffLimits(l *config.Limits) *handoff.Limits {
	r := &handoff.Limits{MaxConns: l.MaxConns, MaxConnsPerSource: l.MaxConnsPerSource, SourcePrefix4: l.SourcePrefix4,
		SourcePrefix6: l.SourcePrefix6, IdleTimeout: l.IdleTimeout, KeepAlive: l.KeepAlive, UserTimeout: l.UserTimeout,
		DialTimeout: l.BackendTimeout, MaxDials: l.MaxDials}
	// 0 in the file or on the command line switches off what 0 means
	// "default" for in handoff.Limits.
	if r.KeepAlive == 0 {
		r.KeepAlive = -1
	}
	if r.UserTimeout == 0 {
		r.UserTimeout = -1
	}
	return r
}
