//go:build !linux

package nfqueue

import "github.com/synproxy-lite/synproxy-lite/driver"

// Config configures the driver (Linux only).
type Config struct {
	QueueNum    uint16
	Queues      int
	BatchSize   int
	MaxQueueLen uint32
	FailOpen    bool
	ReadBuffer  int
}

// Driver is the nfqueue driver (Linux only).
type Driver struct{ driver.Driver }

// Open returns driver.ErrNotSupported outside Linux.
func Open(cfg *Config) (*Driver, error) { return nil, driver.ErrNotSupported }
