package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// DefaultTable is the name of the table synproxy-lite owns.
const DefaultTable = "synproxy_lite"

// DefaultMark is the socket mark handed-off connections carry, and the
// daemon's own connections to the backend: packets with it (socket mark or
// packet mark) are never queued.
const DefaultMark = 0x53504c /* "SPL" */

// Config describes the rules. Port and QueueTotal must be set.
type Config struct {
	// Table is the table's name in the inet family. Empty means DefaultTable.
	Table string
	// Port is the protected TCP port.
	Port uint16
	// Addrs, when set, are the local addresses Port is protected on (IPv4
	// and IPv6 alike): each gets its own copy of the rules, matching its
	// destination address, and a family none of them is of is not
	// protected at all. Empty means every local address.
	Addrs []netip.Addr
	// QueueNum is the first netfilter queue; QueueTotal queues from it are
	// balanced by flow hash (both directions of a flow land on one queue).
	QueueNum, QueueTotal uint16
	// Mark is the socket mark of handed-off connections. Zero means
	// DefaultMark.
	Mark uint32
	// FailOpen sets the queue bypass flag: with no listener on a queue the
	// kernel accepts the packets instead of dropping them.
	FailOpen bool
	// Fallback, when valid and FailOpen is set, is where bypassed SYNs are
	// sent by destination NAT (normally the backend). Without it bypassed
	// packets go to whatever the kernel has on the protected port.
	Fallback netip.AddrPort
	// NetNS, when non-zero, is a file descriptor of the network namespace to
	// program instead of the current one.
	NetNS int
	// Drop replaces the queue statements with drop, for a driver that
	// taps packets below netfilter (AF_PACKET): the kernel's stack must not
	// answer the SYNs and handshake ACKs that the driver answers, while the
	// segments of handed-over connections still reach their sockets.
	// QueueNum, QueueTotal, FailOpen and Fallback do not apply.
	Drop bool
	// Inherit, when non-zero, is the pid of the process that started this
	// one by a graceful restart: Install may replace the table it owns
	// although it still runs.
	Inherit int
	// Lists, when not nil, adds the allow and deny sets (see Lists), with
	// these first elements; SetLists replaces them later. Nil installs no
	// sets (SetLists then fails with ErrNoLists).
	Lists *Lists
	// Monitor hands every packet to the service: the SYNs go to the
	// Fallback by destination NAT once the queue accepted them, and with
	// Drop the drop rules are left out (the driver watches a copy).
	Monitor bool
	// OnDemand lets the port's SYNs through to the Fallback (by
	// destination NAT) until SetEngaged engages the cookies, and counts
	// them (ReadCounts) so that the daemon can follow their rate. The
	// segments after the SYN are handled as with FailOpen (without the
	// bypass flag unless FailOpen is set): connection tracking lets the
	// flows it has seen answered go around the queue, so that no flow
	// breaks when the cookies engage or release.
	OnDemand bool
	// Proven, when not nil, queues the packets of proven clients (the
	// sources of handed-over connections, remembered by the kernel) to a
	// queue of their own (see Proven). Not with Drop.
	Proven *Proven

	owner Owner // the table's owner; zero means this process
}

func (c *Config) table() string {
	if c.Table == "" {
		return DefaultTable
	}
	return c.Table
}

// failOpen reports whether the queues may let packets through: FailOpen
// on a queueing (not Drop) ruleset.
func (c *Config) failOpen() bool { return c.FailOpen && !c.Drop }

func (c *Config) mark() uint32 {
	if c.Mark == 0 {
		return DefaultMark
	}
	return c.Mark
}

// QueueMethod is how packets are queued to userspace.
type QueueMethod int

const (
	// QueueXT is the xtables NFQUEUE target run by nft_compat.
	QueueXT QueueMethod = iota
	// QueueNative is the nft queue expression (nft_queue).
	QueueNative
)

func (m QueueMethod) String() string {
	if m == QueueNative {
		return "nft queue expression"
	}
	return "xt NFQUEUE target via nft compat"
}

// rule is one rule: what nft would print, and its expressions.
type rule struct {
	text  string
	exprs []expr.Any
}

type chain struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	prio     *nftables.ChainPriority
	prioText string
	rules    []rule
}

func (c *Config) validate() error {
	if c.Port == 0 {
		return errors.New("nft: port must be set")
	}
	if c.Drop {
		return nil
	}
	if c.QueueTotal == 0 {
		return errors.New("nft: at least one queue is needed")
	}
	if uint32(c.QueueNum)+uint32(c.QueueTotal)-1 > 0xffff {
		return errors.New("nft: queue numbers exceed 65535")
	}
	return nil
}

func cmpEq(reg uint32, b []byte) *expr.Cmp {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: b}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func ne32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// match expressions shared by every rule: local destination, TCP, port.
func (c *Config) baseMatch() (string, []expr.Any) {
	return fmt.Sprintf("fib daddr type local meta l4proto tcp tcp dport %d", c.Port), []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		cmpEq(1, ne32(unix.RTN_LOCAL)),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		cmpEq(1, []byte{unix.IPPROTO_TCP}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		cmpEq(1, be16(c.Port)),
	}
}

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

func synOnly() (string, []expr.Any) {
	return "tcp flags & (fin|syn|rst|ack) == syn", []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1,
			Mask: []byte{tcpFIN | tcpSYN | tcpRST | tcpACK}, Xor: []byte{0}},
		cmpEq(1, []byte{tcpSYN}),
	}
}

// notSYNOnly matches every segment synOnly does not.
func notSYNOnly() (string, []expr.Any) {
	_, e := synOnly()
	e[2] = &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{tcpSYN}}
	return "tcp flags & (fin|syn|rst|ack) != syn", e
}

// established matches the packets of a connection that connection tracking
// has seen answered: on the protected port, a handed-over connection or one
// the kernel let through, since the daemon answers every other SYN itself.
func established() (string, []expr.Any) {
	return "ct state established", []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: ne32(expr.CtStateBitESTABLISHED), Xor: ne32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ne32(0)},
	}
}

// queueStmt returns the queue statement for method m.
func (c *Config) queueStmt(m QueueMethod) (string, expr.Any) {
	if c.Drop {
		return "drop", &expr.Verdict{Kind: expr.VerdictDrop}
	}
	var text string
	if c.QueueTotal > 1 {
		text = fmt.Sprintf("queue num %d-%d", c.QueueNum, c.QueueNum+c.QueueTotal-1)
	} else {
		text = fmt.Sprintf("queue num %d", c.QueueNum)
	}
	if c.FailOpen {
		text += " bypass"
	}
	if m == QueueNative {
		q := &expr.Queue{Num: c.QueueNum, Total: c.QueueTotal}
		if c.FailOpen {
			q.Flag = expr.QueueFlagBypass
		}
		return text, q
	}
	return text + "  # xt NFQUEUE v3", nfqueueTarget(c.QueueNum, c.QueueTotal, c.FailOpen)
}

// nfqueueTarget is the xtables NFQUEUE target, revision 3. Its info is
// struct xt_NFQ_info_v3 { __u16 queuenum; __u16 queues_total; __u16 flags; }
// in host byte order.
func nfqueueTarget(num, total uint16, bypass bool) *expr.Target {
	info := make(xt.Unknown, 6)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], total)
	var flags uint16
	if bypass {
		flags |= 0x01 // NFQ_FLAG_BYPASS
	}
	binary.NativeEndian.PutUint16(info[4:], flags)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}

// base is the match every rule of one protected destination starts with,
// and the address family it is limited to (0: both).
type base struct {
	text  string
	exprs []expr.Any
	fam   uint8
}

// bases returns the match of each protected destination: the port on every
// local address, or on each of Addrs.
func (c *Config) bases() []base {
	text, exprs := c.baseMatch()
	if len(c.Addrs) == 0 {
		return []base{{text, exprs, 0}}
	}
	var out []base
	for _, a := range c.Addrs {
		a = a.Unmap()
		fam, off, word := uint8(unix.NFPROTO_IPV4), uint32(16), "ip"
		if a.Is6() {
			fam, off, word = unix.NFPROTO_IPV6, 24, "ip6"
		}
		out = append(out, base{fmt.Sprintf("%s daddr %s %s", word, a, text), append([]expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			cmpEq(1, []byte{fam}),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(a.BitLen() / 8)},
			cmpEq(1, a.AsSlice()),
		}, exprs...), fam})
	}
	return out
}

// chains returns the table's chains: those of chainsFor for each protected
// destination, their rules one after the other.
func (c *Config) chains(m QueueMethod) []chain {
	var out []chain
	for _, b := range c.bases() {
		for i, ch := range c.chainsFor(m, b) {
			if i < len(out) {
				out[i].rules = append(out[i].rules, ch.rules...)
			} else {
				out = append(out, ch)
			}
		}
	}
	return out
}

// chainsFor returns the chains with the rules of one protected
// destination, b.
func (c *Config) chainsFor(m QueueMethod, b base) []chain {
	baseText, base := b.text, b.exprs
	synText, syn := synOnly()
	qText, q := c.queueStmt(m)
	join := func(parts ...[]expr.Any) []expr.Any {
		var out []expr.Any
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	counter := func() []expr.Any { return []expr.Any{&expr.Counter{}} }
	accept := func() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }
	// The daemon's own packets (its backend connections carry the mark)
	// are never queued.
	own := rule{baseText + fmt.Sprintf(" meta mark 0x%08x counter accept", c.mark()),
		join(base, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			cmpEq(1, ne32(c.mark())),
		}, counter(), accept())}
	pre := chain{
		name: "prerouting", typ: nftables.ChainTypeFilter,
		hook: nftables.ChainHookPrerouting, prio: nftables.ChainPriorityRaw, prioText: "raw",
		rules: append(append(append(append([]rule{own}, c.listRules()...), c.onDemandRules()...),
			c.provenQueue(synText, syn, m)...),
			rule{baseText + " " + synText + " counter " + qText, join(base, syn, counter(), []expr.Any{q})}),
	}
	if c.Drop && c.Monitor {
		// The driver watches a copy; nothing is dropped.
		pre.rules = pre.rules[:len(pre.rules)-1]
		return append([]chain{pre}, c.natChain(true, b)...)
	}
	marked := rule{baseText + fmt.Sprintf(" socket mark 0x%08x counter accept", c.mark()),
		join(base, []expr.Any{
			&expr.Socket{Key: expr.SocketKeyMark, Register: 1},
			cmpEq(1, ne32(c.mark())),
		}, counter(), accept())}
	if !c.failOpen() && !c.OnDemand {
		pre.rules = append(append(append(append(pre.rules, c.provenLearn()...), marked), c.provenQueue("", nil, m)...),
			rule{baseText + " counter " + qText, join(base, counter(), []expr.Any{q})})
		return append([]chain{pre}, c.natChain(c.Monitor, b)...)
	}
	// A flow the kernel let through (and the nat chain sent to the
	// Fallback) must keep going around the queue once the daemon reads it
	// again. Connection tracking knows those flows, so the segments after
	// the SYN are queued by a chain after it (priority mangle, -150) that
	// accepts the flows it has seen answered, and before the nat chain
	// (dstnat, -100). SYNs are still queued before connection tracking, so
	// a SYN flood never reaches it while the daemon reads the queues; a
	// bypassed SYN goes on through this chain, which does not queue it
	// again, to the nat chain.
	nsynText, nsyn := notSYNOnly()
	ctText, ct := established()
	tracked := chain{
		name: "tracked", typ: nftables.ChainTypeFilter,
		hook: nftables.ChainHookPrerouting, prio: nftables.ChainPriorityMangle, prioText: "mangle",
		rules: append(append(append(append(append([]rule{own}, c.provenLearn()...), marked), c.allowAccept()...),
			rule{baseText + " " + ctText + " counter accept", join(base, ct, counter(), accept())}),
			append(c.provenQueue(nsynText, nsyn, m),
				rule{baseText + " " + nsynText + " counter " + qText, join(base, nsyn, counter(), []expr.Any{q})})...,
		),
	}
	return append([]chain{pre, tracked}, c.natChain(true, b)...)
}

// natChain is the nat chain that sends SYNs to the Fallback: every SYN that
// reaches it (all), or those of allowed sources. None without a Fallback,
// or when neither applies.
//
// With Addrs, b is one destination; when the Fallback is of the other
// family the chain has no rule for it (an empty chain keeps the chains of
// every destination alike).
func (c *Config) natChain(all bool, b base) []chain {
	baseText, base := b.text, b.exprs
	synText, syn := synOnly()
	join := func(parts ...[]expr.Any) []expr.Any {
		var out []expr.Any
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	counter := func() []expr.Any { return []expr.Any{&expr.Counter{}} }
	var chains []chain
	if c.Fallback.IsValid() && (all || c.Lists != nil) {
		fb := c.Fallback
		addr := fb.Addr().Unmap()
		nfproto, fam, famText := uint8(unix.NFPROTO_IPV4), uint32(unix.NFPROTO_IPV4), "ipv4"
		to := fmt.Sprintf("%s:%d", addr, fb.Port())
		if addr.Is6() {
			nfproto, fam, famText = unix.NFPROTO_IPV6, unix.NFPROTO_IPV6, "ipv6"
			to = fmt.Sprintf("[%s]:%d", addr, fb.Port())
		}
		if b.fam != 0 && b.fam != nfproto {
			return append(chains, chain{name: "failopen", typ: nftables.ChainTypeNAT,
				hook: nftables.ChainHookPrerouting, prio: nftables.ChainPriorityNATDest, prioText: "dstnat"})
		}
		var src []expr.Any
		srcText := ""
		if !all {
			var m []expr.Any
			srcText, m = saddr(listSets[2].name, false)
			if addr.Is6() {
				srcText, m = saddr(listSets[3].name, true)
			}
			src, srcText = m[2:], " "+srcText
		}
		nat := chain{
			name: "failopen", typ: nftables.ChainTypeNAT,
			hook: nftables.ChainHookPrerouting, prio: nftables.ChainPriorityNATDest, prioText: "dstnat",
			rules: []rule{{
				"meta nfproto " + famText + " " + baseText + " " + synText + srcText + " counter dnat " + famText + " to " + to,
				join([]expr.Any{
					&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
					cmpEq(1, []byte{nfproto}),
				}, base, syn, src, counter(), []expr.Any{
					&expr.Immediate{Register: 1, Data: addr.AsSlice()},
					&expr.Immediate{Register: 2, Data: be16(fb.Port())},
					&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
				}),
			}},
		}
		chains = append(chains, nat)
	}
	return chains
}

// Render returns the ruleset as nft would list it, for --dry-run.
func Render(cfg *Config, m QueueMethod) (string, error) {
	if err := cfg.validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", cfg.table())
	cfg.renderLists(&b)
	cfg.renderOnDemand(&b)
	cfg.renderProven(&b)
	for i, ch := range cfg.chains(m) {
		if i > 0 {
			b.WriteString("\n")
		}
		typ := "filter"
		if ch.typ == nftables.ChainTypeNAT {
			typ = "nat"
		}
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype %s hook prerouting priority %s; policy accept;\n", ch.name, typ, ch.prioText)
		for _, r := range ch.rules {
			fmt.Fprintf(&b, "\t\t%s\n", r.text)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String(), nil
}

func (c *Config) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if c.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(c.NetNS))
	}
	cc, err := nftables.New(opts...)
	return cc, driver.NewOpError("open nftables netlink", err)
}

// ProbeQueue reports whether the kernel accepts the nft queue expression,
// by validating it in a table that the same transaction never commits
// when it fails (and deletes when it succeeds).
func ProbeQueue(cfg *Config) (QueueMethod, error) {
	cc, err := cfg.conn()
	if err != nil {
		return QueueXT, err
	}
	// A name of this process's own, created only if it does not exist, so
	// that the probe never touches a table it did not make.
	t := cc.CreateTable(&nftables.Table{Family: nftables.TableFamilyINet,
		Name: fmt.Sprintf("%s_probe_%d", cfg.table(), os.Getpid())})
	ch := cc.AddChain(&nftables.Chain{Name: "probe", Table: t})
	cc.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{&expr.Queue{Num: cfg.QueueNum, Total: 1}}})
	if err := cc.Flush(); err != nil {
		if errors.Is(err, unix.EPERM) {
			return QueueXT, driver.NewOpError("probe nft queue", err)
		}
		return QueueXT, nil
	}
	cc.DelTable(t)
	return QueueNative, driver.NewOpError("delete probe table", cc.Flush())
}

// Remove deletes the table if it exists and this process may delete it:
// it is its own, or its owner is gone (see Owner). It reports whether it
// did. A table synproxy-lite did not create, or one another running
// process owns, is left alone: ErrNotOwned, ErrInUse.
func Remove(cfg *Config) (bool, error) {
	cc, err := cfg.conn()
	if err != nil {
		return false, err
	}
	exists, err := cfg.mayReplace(cc)
	if !exists || err != nil {
		return false, err
	}
	cc.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: cfg.table()})
	if err := cc.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) { // gone meanwhile
			return false, nil
		}
		return false, driver.NewOpError("delete nft table "+cfg.table(), err)
	}
	return true, nil
}

// Rules is an installed ruleset.
type Rules struct {
	cfg    Config
	Method QueueMethod
	// Stale is set when Install found and replaced a table of its own, of
	// a process that is gone, or inherited in a graceful restart.
	Stale bool
}

// addTable adds to cc's batch the table with its owner mark and the
// chains and rules of queue method m.
func (c *Config) addTable(cc *nftables.Conn, m QueueMethod) error {
	t := cc.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: c.table()})
	c.addOwner(cc, t)
	if err := c.addLists(cc, t); err != nil {
		return err
	}
	if err := c.addOnDemand(cc, t); err != nil {
		return err
	}
	if err := c.addProven(cc, t); err != nil {
		return err
	}
	for _, ch := range c.chains(m) {
		nc := cc.AddChain(&nftables.Chain{Name: ch.name, Table: t, Type: ch.typ, Hooknum: ch.hook,
			Priority: ch.prio, Policy: policyAccept()})
		for _, r := range ch.rules {
			cc.AddRule(&nftables.Rule{Table: t, Chain: nc, Exprs: r.exprs})
		}
	}
	return nil
}

// Install probes the queue method and installs the ruleset, marked with
// this process as its owner, in one transaction. A table of the same name
// that this process may replace (see Owner) is deleted in that same
// transaction, so the port is never without rules; any other table of
// that name makes Install fail with ErrNotOwned or ErrInUse and is left
// as it is. It refuses (ErrLoopbackFallback) a FailOpen ruleset whose
// loopback Fallback the bypassed packets could not reach.
func Install(cfg *Config) (*Rules, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.checkFallback(); err != nil {
		return nil, err
	}
	m, err := ProbeQueue(cfg)
	if err != nil {
		return nil, err
	}
	cc, err := cfg.conn()
	if err != nil {
		return nil, err
	}
	stale, err := cfg.mayReplace(cc)
	if err != nil {
		return nil, err
	}
	if stale {
		cc.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: cfg.table()})
	}
	if err := cfg.addTable(cc, m); err != nil {
		return nil, err
	}
	if err := cc.Flush(); err != nil {
		return nil, driver.NewOpError("install nft table "+cfg.table(), err)
	}
	return &Rules{cfg: *cfg, Method: m, Stale: stale}, nil
}

func policyAccept() *nftables.ChainPolicy {
	p := nftables.ChainPolicyAccept
	return &p
}

// Remove deletes the installed table, unless another process has made it
// its own since (ErrInUse). It is idempotent.
func (r *Rules) Remove() error {
	_, err := Remove(&r.cfg)
	return err
}
