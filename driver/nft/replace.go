package nft

import (
	"github.com/google/nftables"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// Replace installs the ruleset of cfg in place of the table of the same
// name, in one transaction: the kernel goes from the old rules to the new
// ones with no moment between them, so that a graceful restart can move
// the port's packets from one range of queues to another. It creates the
// table when there is none. Like Install, it replaces only a table this
// process may replace (its own, its parent's in a graceful restart, or a
// stale one; see Owner), and marks the new table with this process.
func Replace(cfg *Config) (*Rules, error) {
	if err := cfg.validate(); err != nil {
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
	if _, err := cfg.mayReplace(cc); err != nil {
		return nil, err
	}
	// Adding an existing table is a no-op, so the delete that follows
	// always finds one.
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: cfg.table()}
	cc.AddTable(t)
	cc.DelTable(t)
	if err := cfg.addTable(cc, m); err != nil {
		return nil, err
	}
	if err := cc.Flush(); err != nil {
		return nil, driver.NewOpError("replace nft table "+cfg.table(), err)
	}
	return &Rules{cfg: *cfg, Method: m}, nil
}
