//go:build !linux

package localaddr

// Watch keeps a Set current. It exists on Linux only.
type Watch struct{}

// New returns ErrNotSupported.
func New(changed func(*Set)) (*Watch, error) { return nil, ErrNotSupported }

// Load returns nil.
func (w *Watch) Load() *Set { return nil }

// Close does nothing.
func (w *Watch) Close() {}
