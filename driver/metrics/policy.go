package metrics

import (
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
)

// ListCounts are the packets the allow and deny lists matched (the nft
// counters, proxy.Server.PolicyCounts), for Collector.Lists.
type ListCounts struct {
	Allowed, Denied uint64
	Proven          uint64 // packets of proven clients queued to their own queue or ring
}

// policyMetrics are the metrics of the engine's protection policy: limits
// hit, monitor mode's would-be counts, on-demand engagement, and the lists'
// packets. They are exported for an engine with a policy (a mode other than
// protect, a limit or a budget) or a Collector with Lists; all returns them
// whatever the policy, for their descriptions.
func (c *Collector) policyMetrics(all bool) []metric {
	if !all && c.Lists == nil && (c.e == nil || !hasPolicy(c.e.Policy())) {
		return nil
	}
	pc := &engine.PolicyCounters{}
	engaged := uint64(1)
	if c.e != nil {
		pc = c.e.PolicyCounters()
		switch c.e.Policy().Mode {
		case engine.ModeMonitor:
			engaged = 0
		case engine.ModeOnDemand:
			engaged = 0
			if pc.Engaged.Load() {
				engaged = 1
			}
		}
	}
	var lc ListCounts
	if c.Lists != nil {
		lc = c.Lists()
	}
	var provenOver uint64
	if c.e != nil {
		if p, ok := c.e.Driver().(driver.Prover); ok {
			provenOver = p.ProvenOverruns()
		}
	}
	return []metric{
		{"list_allowed_packets", "Packets of allowed sources, let through to the service around the proxy (nft counter).", "", lc.Allowed, false},
		{"list_denied_packets", "Packets of denied sources, dropped before the engine (nft counter; on afxdp also the XDP program's drops).", "", lc.Denied, false},
		{"proven_packets", "Packets of proven clients (sources of handed-over connections) queued to their own queue (nft counter) or ring (afxdp: the XDP program's counter; afpacket: read from its ring).", "", lc.Proven, false},
		{"proven_overruns", "Packets of proven clients the kernel could not put on their own ring (afxdp: the proven sockets' XDP statistics; afpacket: its socket's drops; 0 on nfqueue, whose proven queue the kernel counts).", "", provenOver, false},
		{"syn_limited", "SYNs dropped over their source prefix's SYN rate limit.", "", pc.SYNLimited.Load(), false},
		{"reflection_limited", "SYN-ACKs withheld (SYNs left unanswered, re-sends skipped) by the reflection budget of their destination prefix.", "", pc.ReflectLimited.Load(), false},
		{"monitor_synack", "Monitor mode: SYN-ACKs the engine would have sent.", "", pc.MonitorSYNACKs.Load(), false},
		{"monitor_cookie_valid", "Monitor mode: handshake ACKs the engine would have accepted (their SYN was seen).", "", pc.MonitorValid.Load(), false},
		{"monitor_cookie_invalid", "Monitor mode: ACKs the engine would have refused (no SYN seen for them).", "", pc.MonitorInvalid.Load(), false},
		{"monitor_handoffs", "Monitor mode: connections the engine would have handed over.", "", pc.MonitorHandoffs.Load(), false},
		{"cookies_engaged", "1 while SYNs are answered with cookies: always in protect mode, never in monitor mode, during a flood on demand.", "", engaged, true},
		{"cookie_engagements", "On-demand mode: times the SYN rate engaged the cookies.", "", pc.Engagements.Load(), false},
		{"ondemand_syn_passed", "On-demand mode: SYNs the engine saw and let through to the service while the cookies were not engaged.", "", pc.SYNPassed.Load(), false},
	}
}

func hasPolicy(p engine.Policy) bool {
	return p.Mode != engine.ModeProtect || p.SYNRate > 0 || p.ReflectRate > 0
}
