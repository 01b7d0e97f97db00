package main

import (
	"errors"
	"flag"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
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

// limits checks the flags and returns the handoff.Limits they spell.
func (l *limitFlags) limits() (*handoff.Limits, error) {
	switch {
	case l.maxConns < -1:
		return nil, errors.New("--max-conns must be -1 (no limit), 0 (from the descriptor limit) or positive")
	case l.perSource < 0:
		return nil, errors.New("--max-conns-per-source must be 0 (no limit) or positive")
	case l.prefix4 < 1 || l.prefix4 > 32:
		return nil, errors.New("--source-prefix4 must be 1-32")
	case l.prefix6 < 1 || l.prefix6 > 128:
		return nil, errors.New("--source-prefix6 must be 1-128")
	case l.idle < 0:
		return nil, errors.New("--idle-timeout must not be negative")
	case l.keepAlive < 0 || l.keepAlive > 0 && l.keepAlive < time.Second:
		return nil, errors.New("--keepalive must be 0 (off) or at least 1s")
	case l.userT < 0 || l.userT > 0 && l.userT < time.Millisecond:
		return nil, errors.New("--user-timeout must be 0 (the kernel's) or at least 1ms")
	case l.backendTimeout <= 0:
		return nil, errors.New("--backend-timeout must be positive")
	case l.maxDials < -1 || l.maxDials == 0:
		return nil, errors.New("--max-dials must be -1 (no limit) or positive")
	}
	r := &handoff.Limits{MaxConns: l.maxConns, MaxConnsPerSource: l.perSource, SourcePrefix4: l.prefix4,
		SourcePrefix6: l.prefix6, IdleTimeout: l.idle, KeepAlive: l.keepAlive, UserTimeout: l.userT,
		DialTimeout: l.backendTimeout, MaxDials: l.maxDials}
	// 0 on the command line switches off what 0 means "default" for in
	// handoff.Limits.
	if r.KeepAlive == 0 {
		r.KeepAlive = -1
	}
	if r.UserTimeout == 0 {
		r.UserTimeout = -1
	}
	return r, nil
}
