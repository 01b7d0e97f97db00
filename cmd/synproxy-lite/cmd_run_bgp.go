package main

import (
	"context"
	"flag"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/synproxy-lite/synproxy-lite/bgp"
	"github.com/synproxy-lite/synproxy-lite/driver/metrics"
	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
	"github.com/synproxy-lite/synproxy-lite/internal/config"
)

// bgpFlags are the flags of "run" that announce the service address over
// BGP while the daemon is ready (package bgp).
type bgpFlags struct {
	peers, announce, communities listFlag
	asn, peerASN                 uint
	routerID, nextHop, nextHop6  string
	localAddr                    string
	hold, gracefulRestart        time.Duration
	withdrawDelay                time.Duration
}

// listFlag is a flag that may be repeated, each value possibly a comma
// separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func addBGPFlags(fs *flag.FlagSet) *bgpFlags {
	b := &bgpFlags{}
	fs.Var(&b.peers, "bgp-peer", "BGP peer `ADDR[:PORT]` to announce the service to (repeatable); none: no BGP")
	fs.UintVar(&b.asn, "bgp-asn", 0, "this node's AS `number` (required with --bgp-peer)")
	fs.UintVar(&b.peerASN, "bgp-peer-asn", 0, "the peers' AS `number`; 0: any AS but this node's")
	fs.StringVar(&b.routerID, "bgp-router-id", "", "BGP identifier, an IPv4 `address` unique among the router's neighbours (required with --bgp-peer)")
	fs.Var(&b.announce, "bgp-announce", "`prefix` announced while ready (repeatable), e.g. the service's /32 and /128 held on lo")
	fs.DurationVar(&b.hold, "bgp-hold-time", 9*time.Second, "BGP hold time offered (3s or more): a dead node's routes go within it")
	fs.Var(&b.communities, "bgp-community", "`AS:VALUE` community attached to the announcements (repeatable)")
	fs.StringVar(&b.nextHop, "bgp-next-hop", "", "IPv4 next hop `address` of the announcements; default: the session's own address")
	fs.StringVar(&b.nextHop6, "bgp-next-hop6", "", "IPv6 next hop `address` (needed for IPv6 prefixes over an IPv4 session)")
	fs.StringVar(&b.localAddr, "bgp-local-address", "", "source `address` of the BGP sessions; default: the kernel's choice")
	fs.DurationVar(&b.gracefulRestart, "bgp-graceful-restart", 0,
		"restart `time` offered to the peers (RFC 4724): a graceful restart keeps the routes; so does a crash, for that long; 0: off")
	fs.DurationVar(&b.withdrawDelay, "bgp-withdraw-delay", 2*time.Second,
		"on SIGTERM, `time` between the withdrawal and the start of the drain, for the router to move new flows away")
	return b
}

// config returns the BGP of the flags (config.Config.BGP, validated with
// the rest), or nil when none of --bgp-peer, --bgp-announce, --bgp-asn
// and --bgp-router-id is given.
func (b *bgpFlags) config() *config.BGP {
	if len(b.peers) == 0 && len(b.announce) == 0 && b.asn == 0 && b.routerID == "" {
		return nil
	}
	return &config.BGP{Peers: b.peers, ASN: int64(min(b.asn, 1<<40)), PeerASN: int64(min(b.peerASN, 1<<40)),
		RouterID: b.routerID, Announce: b.announce, HoldTime: b.hold, GracefulRestart: b.gracefulRestart,
		WithdrawDelay: b.withdrawDelay, Communities: b.communities, NextHop: b.nextHop, NextHop6: b.nextHop6,
		LocalAddress: b.localAddr}
}

// bgpReady is what the speaker announces on: the daemon's readiness, the
// same as /readyz (proxy.Server.Ready: the engine runs, the nft table is
// there and this process's, the backend took a connection lately or takes
// a probe now).
func bgpReady(srv *proxy.Server) func() (bool, string) {
	return func() (bool, string) {
		if err := srv.Ready(); err != nil {
			return false, err.Error()
		}
		return true, ""
	}
}

// newSpeaker makes the speaker of the configuration's BGP (the file's
// [bgp] or the --bgp-* flags), if any, announcing while ready says yes.
// It starts once the servers serve.
func (o *runOptions) newSpeaker(ready func() (bool, string), log *slog.Logger) (*bgp.Speaker, error) {
	if o.bgp == nil {
		return nil, nil
	}
	c := *o.bgp
	c.Ready, c.Logger = ready, log
	return bgp.New(&c)
}

// withdrawThenStop returns a context that ends --bgp-withdraw-delay after
// ctx does, once the speaker has withdrawn the prefixes: new flows move
// to the other nodes before this one drains.
func (o *runOptions) withdrawThenStop(ctx context.Context, sp *bgp.Speaker, log *slog.Logger) context.Context {
	if sp == nil {
		return ctx
	}
	run, cancel := context.WithCancel(context.Background())
	go func() {
		<-ctx.Done()
		wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := sp.Withdraw(wctx); err != nil {
			log.Warn("bgp: withdrawal not confirmed on every session", "err", err)
		}
		wcancel()
		time.Sleep(o.cfg.BGP.WithdrawDelay)
		cancel()
	}()
	return run
}

// bgpCollector exports the speaker's state at scrape time.
type bgpCollector struct {
	sp                   *bgp.Speaker
	state, announced, ok *prometheus.Desc
}

func newBGPCollector(sp *bgp.Speaker) *bgpCollector {
	return &bgpCollector{sp: sp,
		state: prometheus.NewDesc("synproxy_lite_bgp_session_state",
			"State of the BGP session with each peer: 0 idle, 1 connect, 2 opensent, 3 openconfirm, 4 established.",
			[]string{"peer"}, nil),
		announced: prometheus.NewDesc("synproxy_lite_bgp_announced",
			"1 while the service prefixes are announced to the peer, else 0.", []string{"peer"}, nil),
		ok: prometheus.NewDesc("synproxy_lite_bgp_ready",
			"1 while the node is ready to serve and wants its prefixes announced, else 0.", nil, nil),
	}
}

func (c *bgpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.announced
	ch <- c.ok
}

func (c *bgpCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.sp.Status()
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, p := range st.Peers {
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(p.State), p.Peer.String())
		ch <- prometheus.MustNewConstMetric(c.announced, prometheus.GaugeValue, b2f(p.Announced), p.Peer.String())
	}
	ch <- prometheus.MustNewConstMetric(c.ok, prometheus.GaugeValue, b2f(st.Ready))
}

// bgpCollectors are the metrics collectors of the speaker, if any.
func (o *runOptions) bgpCollectors() []prometheus.Collector {
	if o.speaker == nil {
		return nil
	}
	return []prometheus.Collector{newBGPCollector(o.speaker)}
}

// detachOnHandOver wraps proxy.ServerConfig.OnHandOver: once a graceful
// restart's new process has taken over, this process's sessions close
// without a NOTIFICATION, so that the new process's sessions can open
// (a router takes one session per neighbour address). With
// --bgp-graceful-restart the router keeps the routes meanwhile; without
// it they go until the new process announces them (its next attempt to
// connect, within 2 s). If the new process fails before it takes over,
// this is never called and nothing is withdrawn; if it fails after, its
// sessions end and the routes go.
func (o *runOptions) detachOnHandOver(next func(pid int)) func(pid int) {
	return func(pid int) {
		if o.speaker != nil {
			o.speaker.Detach()
		}
		next(pid)
	}
}

// bgpReadiness is the daemon's readiness with its BGP sessions' state
// below the answer on /readyz ("bgp: ready; 10.0.0.1:179 established
// announced"). The sessions do not make the answer: a node announces
// because it is ready, not the other way round.
type bgpReadiness struct {
	metrics.Readiness
	sp *bgp.Speaker
}

func (r bgpReadiness) ReadyDetail() string { return "bgp: " + r.sp.Status().String() + "\n" }

// withBGP adds the speaker's state, if there is a speaker, to r.
func withBGP(r metrics.Readiness, sp *bgp.Speaker) metrics.Readiness {
	if sp == nil || r == nil {
		return r
	}
	return bgpReadiness{r, sp}
}
