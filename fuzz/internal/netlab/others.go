//go:build !linux

package netlab

import "errors"

// ErrNotSupported is returned on systems other than Linux.
var ErrNotSupported = errors.New("netlab: not supported on this system")
