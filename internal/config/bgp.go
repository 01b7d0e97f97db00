package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/bgp"
)

// BGP is the announcement of the service addresses over BGP while the
// daemon is ready (package bgp): the file's [bgp] table, or run's --bgp-*
// flags. The prefixes are the daemon's, not a service's: one speaker
// announces them all while every server of the daemon is ready, as one
// node of a fleet serves or does not.
type BGP struct {
	// Peers are the neighbours, each an address or ADDR:PORT
	// ("10.0.0.1", "[2001:db8::1]:1179").
	Peers []string
	// ASN is this node's AS number; PeerASN the peers' (0: any AS but
	// this node's).
	ASN, PeerASN int64
	// RouterID is the BGP identifier, an IPv4 address.
	RouterID string
	// Announce are the prefixes announced while ready (an address alone
	// is its /32 or /128).
	Announce []string
	// HoldTime is the hold time offered (3s or more).
	HoldTime time.Duration
	// GracefulRestart is the restart time offered (RFC 4724); 0: off.
	GracefulRestart time.Duration
	// WithdrawDelay is the wait, on SIGTERM, between the withdrawal and
	// the start of the drain.
	WithdrawDelay time.Duration
	// Communities are AS:VALUE communities attached to the announcements.
	Communities []string
	// NextHop and NextHop6 are the next hops of the IPv4 and IPv6
	// prefixes; empty: the session's own address.
	NextHop, NextHop6 string
	// LocalAddress is the sessions' source address; empty: the kernel's
	// choice.
	LocalAddress string
}

// The defaults of the BGP keys the file leaves out, and of run's flags.
const (
	DefaultBGPHoldTime      = 9 * time.Second
	DefaultBGPWithdrawDelay = 2 * time.Second
	// BGPConnectRetry is the wait between two attempts to open a session.
	BGPConnectRetry = 2 * time.Second
)

type fileBGP struct {
	Peers           []string  `toml:"peers"`
	ASN             int64     `toml:"asn"`
	PeerASN         int64     `toml:"peer_asn"`
	RouterID        string    `toml:"router_id"`
	Announce        []string  `toml:"announce"`
	HoldTime        *duration `toml:"hold_time"`
	GracefulRestart *duration `toml:"graceful_restart"`
	WithdrawDelay   *duration `toml:"withdraw_delay"`
	Communities     []string  `toml:"communities"`
	NextHop         string    `toml:"next_hop"`
	NextHop6        string    `toml:"next_hop6"`
	LocalAddress    string    `toml:"local_address"`
}

const bgpKeys = "peers, asn, peer_asn, router_id, announce, hold_time, graceful_restart, withdraw_delay, communities, " +
	"next_hop, next_hop6, local_address"

func (f *fileBGP) bgp(dur func(key string, p *duration, def time.Duration) time.Duration) *BGP {
	if f == nil {
		return nil
	}
	return &BGP{Peers: f.Peers, ASN: f.ASN, PeerASN: f.PeerASN, RouterID: f.RouterID, Announce: f.Announce,
		HoldTime:        dur("bgp.hold_time", f.HoldTime, DefaultBGPHoldTime),
		GracefulRestart: dur("bgp.graceful_restart", f.GracefulRestart, 0),
		WithdrawDelay:   dur("bgp.withdraw_delay", f.WithdrawDelay, DefaultBGPWithdrawDelay),
		Communities:     f.Communities, NextHop: f.NextHop, NextHop6: f.NextHop6, LocalAddress: f.LocalAddress}
}

// Speaker returns the bgp.Config of c's BGP (without Ready and Logger),
// or nil without one. c must be valid (Validate).
func (c *Config) Speaker() *bgp.Config {
	if c.BGP == nil {
		return nil
	}
	return c.BGP.build(func(string, any, string, ...any) {})
}

// bgp checks the BGP keys.
func (v *validator) bgp() {
	b := v.c.BGP
	if b == nil {
		return
	}
	if len(b.Peers) == 0 {
		if v.c.flags {
			v.errs = append(v.errs, &Error{Key: "bgp.peers", Flag: "--bgp-peer",
				Want: "--bgp-announce, --bgp-asn and --bgp-router-id need --bgp-peer"})
			return
		}
		v.bad("bgp.peers", nil, "required in [bgp]: the neighbours, e.g. [\"10.0.0.1\", \"[2001:db8::1]:179\"]")
		return
	}
	n := len(v.errs)
	c := b.build(v.bad)
	if len(v.errs) > n {
		return
	}
	if _, err := bgp.New(c); err != nil {
		v.bad("bgp", nil, "%s", strings.TrimPrefix(err.Error(), "bgp: invalid configuration: "))
	}
}

// build parses b into a bgp.Config, calling bad for each invalid value.
func (b *BGP) build(bad func(key string, value any, want string, args ...any)) *bgp.Config {
	c := &bgp.Config{ASN: uint32(b.ASN), HoldTime: b.HoldTime, GracefulRestart: b.GracefulRestart,
		ConnectRetry: BGPConnectRetry}
	switch {
	case b.ASN == 0:
		bad("bgp.asn", nil, "required with peers: this node's AS number, 1-4294967295")
	case b.ASN < 0 || b.ASN > 1<<32-1 || b.ASN == bgp.ASTrans:
		bad("bgp.asn", b.ASN, "want an AS number 1-4294967295 (not %d, AS_TRANS)", bgp.ASTrans)
	}
	switch {
	case b.PeerASN < 0 || b.PeerASN > 1<<32-1:
		bad("bgp.peer_asn", b.PeerASN, "want 0 (any AS but this node's) or an AS number 1-4294967295")
	case b.PeerASN != 0 && b.PeerASN == b.ASN:
		bad("bgp.peer_asn", b.PeerASN, "want the peers' AS, not this node's: only external sessions are supported")
	}
	if len(b.Announce) == 0 {
		bad("bgp.announce", nil, "required with peers: the prefixes announced while ready (the services' /32 and /128)")
	}
	var err error
	if c.RouterID, err = netip.ParseAddr(b.RouterID); err != nil || !c.RouterID.Is4() || c.RouterID.IsUnspecified() {
		if b.RouterID == "" {
			bad("bgp.router_id", nil, "required with peers: an IPv4 address unique among the router's neighbours")
		} else {
			bad("bgp.router_id", b.RouterID, "want an IPv4 address")
		}
	}
	if b.HoldTime < 3*time.Second || b.HoldTime > 65535*time.Second {
		bad("bgp.hold_time", b.HoldTime, "want 3s-65535s")
	}
	if b.GracefulRestart < 0 || b.GracefulRestart > 4095*time.Second {
		bad("bgp.graceful_restart", b.GracefulRestart, "want 0 (off) up to 4095s")
	}
	if b.WithdrawDelay < 0 {
		bad("bgp.withdraw_delay", b.WithdrawDelay, "want 0 or a positive duration")
	}
	var local netip.Addr
	if b.LocalAddress != "" {
		if local, err = netip.ParseAddr(b.LocalAddress); err != nil || local.Zone() != "" {
			bad("bgp.local_address", b.LocalAddress, "want an IPv4 or IPv6 address")
		}
	}
	for _, s := range b.Peers {
		p := bgp.Peer{ASN: uint32(b.PeerASN), LocalAddr: local}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			p.Addr, p.Port = ap.Addr(), ap.Port()
		} else if p.Addr, err = netip.ParseAddr(s); err != nil {
			bad("bgp.peers", s, "want an address or ADDR:PORT (\"10.0.0.1\", \"[2001:db8::1]:1179\")")
			continue
		}
		c.Peers = append(c.Peers, p)
	}
	for _, s := range b.Announce {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, err2 := netip.ParseAddr(s)
			if err2 != nil || a.Zone() != "" {
				bad("bgp.announce", s, "want a prefix such as \"192.0.2.1/32\" or \"2001:db8::1/128\"")
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() || p != p.Masked() {
			bad("bgp.announce", s, "want a prefix without host bits (%v), not an IPv4-mapped address", p.Masked())
			continue
		}
		c.Prefixes = append(c.Prefixes, p)
	}
	for _, s := range b.Communities {
		as, val, ok := strings.Cut(s, ":")
		a, err1 := strconv.ParseUint(as, 10, 16)
		x, err2 := strconv.ParseUint(val, 10, 16)
		if !ok || err1 != nil || err2 != nil {
			bad("bgp.communities", s, "want AS:VALUE, both 0-65535 (\"65001:100\")")
			continue
		}
		c.Communities = append(c.Communities, uint32(a)<<16|uint32(x))
	}
	for _, f := range []struct {
		key, s string
		six    bool
		dst    *netip.Addr
	}{{"bgp.next_hop", b.NextHop, false, &c.NextHop}, {"bgp.next_hop6", b.NextHop6, true, &c.NextHop6}} {
		if f.s == "" {
			continue
		}
		a, err := netip.ParseAddr(f.s)
		if err != nil || a.Zone() != "" || a.Is4() == f.six || a.Is4In6() {
			fam := "IPv4"
			if f.six {
				fam = "IPv6"
			}
			bad(f.key, f.s, "want an %s address", fam)
			continue
		}
		*f.dst = a
	}
	return c
}

// Summary says in one line what b announces, to whom (for check).
func (b *BGP) Summary() string {
	if b == nil {
		return "bgp: none"
	}
	return fmt.Sprintf("bgp: AS %d, router id %s, %d peer(s) %s (AS %s), announce %s while ready, hold time %v",
		b.ASN, b.RouterID, len(b.Peers), strings.Join(b.Peers, ", "), peerAS(b.PeerASN),
		strings.Join(b.Announce, ", "), b.HoldTime)
}

func peerAS(n int64) string {
	if n == 0 {
		return "any external"
	}
	return strconv.FormatInt(n, 10)
}
