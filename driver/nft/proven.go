package nft

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"golang.org/x/sys/unix"
)

// Proven clients first (Config.Proven): the kernel remembers the sources
// of connections handed over after a cookie handshake, in two sets of a
// fixed size whose elements expire (proven4, proven6), and queues their
// packets to a queue of their own, which the flood does not fill:
//
//	set proven4 { type ipv4_addr; size N; flags dynamic,timeout; timeout T; }
//	... tcp dport P socket mark M update @proven4 { ip saddr }      # a handed-over connection: its source is proven
//	... tcp dport P socket mark M accept
//	... tcp dport P ip saddr @proven4 counter name "proven" queue num Q
//
// The learning rule runs on every packet that reaches a handed-over
// socket, in the kernel, refreshing the element's timeout; the daemon does
// nothing per packet or per connection for it. A full set takes no new
// elements until some expire: a proven source is never evicted by the
// flood (spoofed sources never complete a handshake, so they never get
// in).

// Proven configures proven clients first.
type Proven struct {
	// Queue is the queue of the proven sources' packets, outside the
	// balanced range of QueueNum.
	Queue uint16
	// Size is the most sources each set (IPv4, IPv6) holds. Zero means
	// DefaultProvenSize.
	Size uint32
	// Timeout is how long a source stays proven after the last packet of
	// a handed-over connection of it. Zero means DefaultProvenTimeout.
	Timeout time.Duration
}

// Defaults of Proven, those of every driver.
const (
	DefaultProvenSize    = driver.DefaultProvenSize
	DefaultProvenTimeout = driver.DefaultProvenTimeout
)

const counterProven = "proven"

// driverProven is p without its queue: the defaults are every driver's.
func (p *Proven) driverProven() *driver.Proven {
	return &driver.Proven{Size: p.Size, Timeout: p.Timeout}
}

func (p *Proven) size() uint32 { return p.driverProven().SizeOrDefault() }

func (p *Proven) timeout() time.Duration { return p.driverProven().TimeoutOrDefault() }

var provenSets = []listSet{{"proven4", false, false}, {"proven6", true, false}}

func (c *Config) provenSet(t *nftables.Table, ls listSet) *nftables.Set {
	s := ls.set(t)
	s.Interval, s.Dynamic, s.HasTimeout, s.Timeout, s.Size = false, true, true, c.Proven.timeout(), c.Proven.size()
	return s
}

// provenLearn are the rules that put the source of a packet of a
// handed-over connection in the proven sets (before the rule that accepts
// those packets).
func (c *Config) provenLearn() []rule {
	if c.Proven == nil || c.Drop {
		return nil
	}
	baseText, base := c.baseMatch()
	var rs []rule
	for _, ls := range provenSets {
		text, m := saddr(ls.name, ls.v6)
		field := strings.TrimSuffix(text, " @"+ls.name)
		e := append(append([]expr.Any{}, base...),
			&expr.Socket{Key: expr.SocketKeyMark, Register: 1},
			cmpEq(1, ne32(c.mark())))
		e = append(e, m[:3]...) // family, source address into register 1
		e = append(e, &expr.Dynset{SrcRegKey: 1, SetName: ls.name, Operation: uint32(unix.NFT_DYNSET_OP_UPDATE)})
		rs = append(rs, rule{fmt.Sprintf("%s socket mark 0x%08x update @%s { %s }", baseText, c.mark(), ls.name, field), e})
	}
	return rs
}

// provenQueue are the rules that queue a proven source's packets (match,
// the SYN or not, prepended) to the proven queue.
func (c *Config) provenQueue(matchText string, match []expr.Any, m QueueMethod) []rule {
	if c.Proven == nil || c.Drop {
		return nil
	}
	baseText, base := c.baseMatch()
	qc := *c
	qc.QueueNum, qc.QueueTotal = c.Proven.Queue, 1
	qText, q := qc.queueStmt(m)
	var rs []rule
	for _, ls := range provenSets {
		text, sm := saddr(ls.name, ls.v6)
		e := append(append(append(append([]expr.Any{}, base...), match...), sm...),
			&expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: counterProven}, q)
		if matchText != "" {
			text = matchText + " " + text
		}
		rs = append(rs, rule{fmt.Sprintf("%s %s counter name %q %s", baseText, text, counterProven, qText), e})
	}
	return rs
}

func (c *Config) addProven(cc *nftables.Conn, t *nftables.Table) error {
	if c.Proven == nil || c.Drop {
		return nil
	}
	cc.AddObj(&nftables.CounterObj{Table: t, Name: counterProven})
	for _, ls := range provenSets {
		if err := cc.AddSet(c.provenSet(t, ls), nil); err != nil {
			return fmt.Errorf("nft: set %s: %w", ls.name, err)
		}
	}
	return nil
}

func (c *Config) renderProven(b *strings.Builder) {
	if c.Proven == nil || c.Drop {
		return
	}
	for _, ls := range provenSets {
		typ := "ipv4_addr"
		if ls.v6 {
			typ = "ipv6_addr"
		}
		fmt.Fprintf(b, "\tset %s {\n\t\ttype %s\n\t\tsize %d\n\t\tflags dynamic,timeout\n\t\ttimeout %s\n\t}\n\n",
			ls.name, typ, c.Proven.size(), nftDuration(c.Proven.timeout()))
	}
	fmt.Fprintf(b, "\tcounter %s {\n\t}\n\n", counterProven)
}

// nftDuration spells d as nft does (1h2m3s, 10m).
func nftDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	s = strings.Replace(s, "m0s", "m", 1)
	return strings.Replace(s, "h0m", "h", 1)
}
