package netlab

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Synproxy installs in the namespace an inet table named table with the
// kernel's synproxy ruleset of the parity harness (docs/parity.md), the rule's
// options taken from r (its TTL and ECN are not nftables options):
//
//	chain raw   { type filter hook prerouting priority raw; tcp flags & (fin|syn|rst|ack) == syn notrack }
//	chain input { type filter hook input priority filter;
//	              ct state invalid,untracked synproxy mss M wscale W timestamp sack-perm
//	              ct state invalid drop }
//
// and returns a function that deletes the table.
func (n *NS) Synproxy(table string, r packet.Rule) (remove func() error, err error) {
	c, err := nftables.New(nftables.WithNetNSFd(n.fd))
	if err != nil {
		return nil, &OpError{Op: "open nftables", NS: n.name, Err: err}
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: table})
	raw := c.AddChain(&nftables.Chain{Name: "raw", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw})
	in := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	tcp := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
	ctState := func(mask uint32) []expr.Any {
		return []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		}
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: raw, Exprs: join(tcp,
		[]expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x17}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
			&expr.Notrack{},
		})})
	c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: join(tcp,
		ctState(expr.CtStateBitINVALID|expr.CtStateBitUNTRACKED),
		[]expr.Any{&expr.SynProxy{Mss: r.MSS, MssValueSet: r.HasMSS, Wscale: r.WScale, WscaleValueSet: r.HasWScale,
			Timestamp: r.Timestamp, SackPerm: r.SACKPerm}})})
	c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: join(
		ctState(expr.CtStateBitINVALID),
		[]expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})})
	if err := c.Flush(); err != nil {
		return nil, &OpError{Op: "install the synproxy ruleset in table " + table, NS: n.name, Err: err}
	}
	return func() error {
		c.DelTable(t)
		if err := c.Flush(); err != nil {
			return &OpError{Op: "delete table " + table, NS: n.name, Err: err}
		}
		return nil
	}, nil
}

func join(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
