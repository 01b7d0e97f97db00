//go:build !linux

package guest

import "errors"

// Main is only meaningful as /init of a Linux guest.
func Main() error { return errors.New("guest: not supported on this system") }
