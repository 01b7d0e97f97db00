package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// The allow and deny lists, in four interval sets of the daemon's table
// (allow4, allow6, deny4, deny6) that the raw chain looks up before anything
// else, counted by two named counters:
//
//	set allow4 { type ipv4_addr; flags interval; }
//	set deny6  { type ipv6_addr; flags interval; }
//	counter allowed { }
//	counter denied { }
//	chain prerouting (raw):
//	... tcp dport P ip saddr @deny4  counter name "denied"  drop
//	... tcp dport P ip6 saddr @deny6 counter name "denied"  drop
//	... tcp dport P ip saddr @allow4 counter name "allowed" accept
//	... tcp dport P ip6 saddr @allow6 counter name "allowed" accept
//
// An allowed source's SYN goes on to the nat chain, which sends it to the
// Fallback (the backend) by destination NAT; connection tracking carries
// the rest of its flow there. A denied source's packets never reach a
// queue. The kernel looks the sets up; the daemon changes them in one
// transaction (SetLists), so a reload is atomic and nothing happens per
// packet in userspace.

// Lists are the allow and deny lists: the sources that bypass the proxy to
// the service, and those dropped before it. A source in both is denied.
type Lists struct {
	Allow, Deny []netip.Prefix
}

const (
	counterAllowed = "allowed"
	counterDenied  = "denied"
)

// Counts are the packets the policy's rules matched since the table was
// installed: the list rules (Allowed, Denied) and the SYNs to the port the
// on-demand rules counted (SYNs).
type Counts struct {
	Allowed, Denied, SYNs uint64
	// Proven counts the packets of proven sources queued to their own
	// queue (Config.Proven).
	Proven uint64
}

// ErrNoLists is returned by SetLists for a ruleset installed without lists
// (Config.Lists nil), and by ReadCounts for one with neither lists nor
// OnDemand.
var ErrNoLists = errors.New("nft: the ruleset has no allow and deny lists")

// ranges turns prefixes of one family into sorted, merged, inclusive
// address ranges: nft refuses overlapping intervals.
func ranges(ps []netip.Prefix, v6 bool) [][2]netip.Addr {
	var rs [][2]netip.Addr
	for _, p := range ps {
		p = p.Masked()
		if !p.IsValid() || p.Addr().Unmap().Is6() != v6 {
			continue
		}
		a := p.Addr().Unmap()
		bits := p.Bits()
		if p.Addr().Is4In6() {
			bits -= 96
		}
		p = netip.PrefixFrom(a, bits)
		rs = append(rs, [2]netip.Addr{p.Addr(), lastAddr(p)})
	}
	slices.SortFunc(rs, func(x, y [2]netip.Addr) int { return x[0].Compare(y[0]) })
	var out [][2]netip.Addr
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if next := last[1].Next(); r[0].Compare(last[1]) <= 0 || next.IsValid() && next == r[0] {
				if r[1].Compare(last[1]) > 0 {
					last[1] = r[1]
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// elements are the interval elements of merged ranges: a start, and an
// end one past the range (none when the range runs to the last address).
func elements(rs [][2]netip.Addr) []nftables.SetElement {
	var es []nftables.SetElement
	for _, r := range rs {
		es = append(es, nftables.SetElement{Key: r[0].AsSlice()})
		if next := r[1].Next(); next.IsValid() {
			es = append(es, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return es
}

// listSet is one of the four sets.
type listSet struct {
	name string
	v6   bool
	deny bool
}

var listSets = []listSet{{"deny4", false, true}, {"deny6", true, true}, {"allow4", false, false}, {"allow6", true, false}}

func (ls listSet) prefixes(l *Lists) []netip.Prefix {
	if ls.deny {
		return l.Deny
	}
	return l.Allow
}

func (ls listSet) set(t *nftables.Table) *nftables.Set {
	typ := nftables.TypeIPAddr
	if ls.v6 {
		typ = nftables.TypeIP6Addr
	}
	return &nftables.Set{Table: t, Name: ls.name, KeyType: typ, Interval: true}
}

// saddr matches the source address against set name (ip saddr @name).
func saddr(name string, v6 bool) (string, []expr.Any) {
	proto, off, n, text := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4), "ip saddr @"
	if v6 {
		proto, off, n, text = unix.NFPROTO_IPV6, 8, 16, "ip6 saddr @"
	}
	return text + name, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		cmpEq(1, []byte{proto}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: name},
	}
}

// listRules are the raw chain's rules of the lists (none without lists).
func (c *Config) listRules() []rule {
	if c.Lists == nil {
		return nil
	}
	baseText, base := c.baseMatch()
	var rs []rule
	for _, ls := range listSets {
		text, m := saddr(ls.name, ls.v6)
		ctr, verdict, vtext := counterAllowed, expr.VerdictAccept, "accept"
		if ls.deny {
			ctr, verdict, vtext = counterDenied, expr.VerdictDrop, "drop"
		}
		e := append(append(append([]expr.Any{}, base...), m...),
			&expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: ctr}, &expr.Verdict{Kind: verdict})
		rs = append(rs, rule{fmt.Sprintf("%s %s counter name %q %s", baseText, text, ctr, vtext), e})
	}
	return rs
}

// allowAccept are the tracked chain's rules that let an allowed source's
// segments by (uncounted: the raw chain counted them).
func (c *Config) allowAccept() []rule {
	if c.Lists == nil {
		return nil
	}
	baseText, base := c.baseMatch()
	var rs []rule
	for _, ls := range listSets[2:] {
		text, m := saddr(ls.name, ls.v6)
		e := append(append(append([]expr.Any{}, base...), m...), &expr.Verdict{Kind: expr.VerdictAccept})
		rs = append(rs, rule{baseText + " " + text + " accept", e})
	}
	return rs
}

// addLists adds the sets, their elements and the counters to cc's batch.
func (c *Config) addLists(cc *nftables.Conn, t *nftables.Table) error {
	if c.Lists == nil {
		return nil
	}
	for _, name := range []string{counterAllowed, counterDenied} {
		cc.AddObj(&nftables.CounterObj{Table: t, Name: name})
	}
	for _, ls := range listSets {
		if err := cc.AddSet(ls.set(t), elements(ranges(ls.prefixes(c.Lists), ls.v6))); err != nil {
			return fmt.Errorf("nft: set %s: %w", ls.name, err)
		}
	}
	return nil
}

// renderLists writes the sets and counters as nft lists them.
func (c *Config) renderLists(b *strings.Builder) {
	if c.Lists == nil {
		return
	}
	for _, ls := range listSets {
		typ := "ipv4_addr"
		if ls.v6 {
			typ = "ipv6_addr"
		}
		fmt.Fprintf(b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n", ls.name, typ)
		if rs := ranges(ls.prefixes(c.Lists), ls.v6); len(rs) > 0 {
			var els []string
			for _, r := range rs {
				els = append(els, rangeText(r))
			}
			fmt.Fprintf(b, "\t\telements = { %s }\n", strings.Join(els, ", "))
		}
		b.WriteString("\t}\n\n")
	}
	for _, name := range []string{counterAllowed, counterDenied} {
		fmt.Fprintf(b, "\tcounter %s {\n\t}\n\n", name)
	}
}

// rangeText prints a range as a prefix when it is one, else as first-last.
func rangeText(r [2]netip.Addr) string {
	for bits := 0; bits <= r[0].BitLen(); bits++ {
		p := netip.PrefixFrom(r[0], bits)
		if p.Masked().Addr() == r[0] && lastAddr(p) == r[1] {
			if bits == r[0].BitLen() {
				return r[0].String()
			}
			return p.String()
		}
	}
	return r[0].String() + "-" + r[1].String()
}

// SetLists replaces the elements of the allow and deny sets of the table
// cfg describes (installed with Lists) in one transaction: each packet sees
// the old lists or the new ones, never a mix or none.
func SetLists(cfg *Config, l *Lists) error {
	if l == nil {
		l = &Lists{}
	}
	cc, err := cfg.conn()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: cfg.table()}
	for _, ls := range listSets {
		s := ls.set(t)
		cc.FlushSet(s)
		if es := elements(ranges(ls.prefixes(l), ls.v6)); len(es) > 0 {
			if err := cc.SetAddElements(s, es); err != nil {
				return fmt.Errorf("nft: set %s: %w", ls.name, err)
			}
		}
	}
	if err := cc.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return ErrNoLists
		}
		return driver.NewOpError("update nft sets of "+cfg.table(), err)
	}
	return nil
}

// ReadCounts reads the counters of the policy's rules in the table cfg
// describes.
func ReadCounts(cfg *Config) (Counts, error) {
	var lc Counts
	cc, err := cfg.conn()
	if err != nil {
		return lc, err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: cfg.table()}
	objs, err := cc.GetObj(&nftables.CounterObj{Table: t})
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return lc, ErrNoLists
		}
		return lc, driver.NewOpError("read nft counters of "+cfg.table(), err)
	}
	found := false
	for _, o := range objs {
		co, ok := o.(*nftables.CounterObj)
		if !ok || co.Table == nil || co.Table.Name != cfg.table() {
			continue
		}
		switch co.Name {
		case counterAllowed:
			lc.Allowed, found = co.Packets, true
		case counterDenied:
			lc.Denied, found = co.Packets, true
		case counterSYNs:
			lc.SYNs, found = co.Packets, true
		case counterProven:
			lc.Proven, found = co.Packets, true
		}
	}
	if !found {
		return lc, ErrNoLists
	}
	return lc, nil
}
