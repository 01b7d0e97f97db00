package nft

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// On-demand protection (Config.OnDemand) in the kernel: a named counter
// counts the port's SYNs, and while the set "ondemand" holds the port they
// are accepted on to the nat chain, which sends them to the Fallback (the
// service's own listener), untouched. Engaging the cookies empties the set
// in one transaction (SetEngaged): from the next packet on, the SYNs are
// queued (or, with Drop, left to the driver) as in protect mode. The
// daemon reads the counter to follow the SYN rate; nothing per packet
// happens in userspace while the cookies are not engaged.
//
//	set ondemand { type inet_service; elements = { P } }
//	counter syns { }
//	... tcp dport P tcp flags & (fin|syn|rst|ack) == syn counter name "syns"
//	... tcp dport P tcp flags & (fin|syn|rst|ack) == syn tcp dport @ondemand accept

const (
	onDemandSet = "ondemand"
	counterSYNs = "syns"
)

func (c *Config) onDemandSet(t *nftables.Table) *nftables.Set {
	return &nftables.Set{Table: t, Name: onDemandSet, KeyType: nftables.TypeInetService}
}

// onDemandRules are the raw chain's rules of on-demand mode.
func (c *Config) onDemandRules() []rule {
	if !c.OnDemand {
		return nil
	}
	baseText, base := c.baseMatch()
	synText, syn := synOnly()
	head := func() []expr.Any { return append(append([]expr.Any{}, base...), syn...) }
	return []rule{
		{fmt.Sprintf("%s %s counter name %q", baseText, synText, counterSYNs),
			append(head(), &expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: counterSYNs})},
		{fmt.Sprintf("%s %s tcp dport @%s accept", baseText, synText, onDemandSet),
			append(head(),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: 1, SetName: onDemandSet},
				&expr.Verdict{Kind: expr.VerdictAccept})},
	}
}

func (c *Config) portElement() []nftables.SetElement {
	return []nftables.SetElement{{Key: binaryutil.BigEndian.PutUint16(c.Port)}}
}

// addOnDemand adds the set (holding the port: not engaged) and the counter.
func (c *Config) addOnDemand(cc *nftables.Conn, t *nftables.Table) error {
	if !c.OnDemand {
		return nil
	}
	cc.AddObj(&nftables.CounterObj{Table: t, Name: counterSYNs})
	return cc.AddSet(c.onDemandSet(t), c.portElement())
}

func (c *Config) renderOnDemand(b *strings.Builder) {
	if !c.OnDemand {
		return
	}
	fmt.Fprintf(b, "\tset %s {\n\t\ttype inet_service\n\t\telements = { %d }\n\t}\n\n", onDemandSet, c.Port)
	fmt.Fprintf(b, "\tcounter %s {\n\t}\n\n", counterSYNs)
}

// ErrNotOnDemand is returned by SetEngaged for a ruleset installed without
// OnDemand.
var ErrNotOnDemand = errors.New("nft: the ruleset is not on demand")

// SetEngaged engages the cookies of an on-demand ruleset (the port's SYNs
// go to the queues, or with Drop to the driver) or releases them (the SYNs
// go on to the service), in one transaction.
func SetEngaged(cfg *Config, engaged bool) error {
	cc, err := cfg.conn()
	if err != nil {
		return err
	}
	s := cfg.onDemandSet(&nftables.Table{Family: nftables.TableFamilyINet, Name: cfg.table()})
	cc.FlushSet(s)
	if !engaged {
		if err := cc.SetAddElements(s, cfg.portElement()); err != nil {
			return err
		}
	}
	if err := cc.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return ErrNotOnDemand
		}
		return driver.NewOpError("update nft set "+onDemandSet+" of "+cfg.table(), err)
	}
	return nil
}
