//go:build !linux

package afxdp

import (
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// Driver is the AF_XDP driver; it exists only on Linux.
type Driver struct{}

// Open returns driver.ErrNotSupported outside Linux.
func Open(cfg *Config) (*Driver, error) { return nil, driver.ErrNotSupported }

// Probe returns driver.ErrNotSupported outside Linux.
func Probe(iface string) (Mode, error) { return 0, driver.ErrNotSupported }

// Name implements driver.Driver.
func (d *Driver) Name() string { return "afxdp" }

// Queues implements driver.Driver.
func (d *Driver) Queues() []driver.Queue { return nil }

// Stats implements driver.Driver.
func (d *Driver) Stats() driver.DriverStats { return driver.DriverStats{} }

// Close implements driver.Driver.
func (d *Driver) Close() error { return nil }

// SetLists returns driver.ErrNotSupported outside Linux.
func (d *Driver) SetLists(allow, deny []netip.Prefix) error { return driver.ErrNotSupported }

// SetEngaged returns driver.ErrNotSupported outside Linux.
func (d *Driver) SetEngaged(engaged bool) error { return driver.ErrNotSupported }

// Prove does nothing outside Linux.
func (d *Driver) Prove(src netip.Addr) {}

// ProvenPackets returns 0 outside Linux.
func (d *Driver) ProvenPackets() uint64 { return 0 }

// ProvenOverruns returns 0 outside Linux.
func (d *Driver) ProvenOverruns() uint64 { return 0 }

// Driver serves proven clients first itself (Config.Proven).
var _ driver.Prover = (*Driver)(nil)
