package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// NS is a network namespace held open by a file descriptor; it disappears
// with its last reference (Close) together with its interfaces.
type NS struct{ fd int }

// FD returns the namespace file descriptor.
func (n *NS) FD() int { return n.fd }

// Close releases the namespace.
func (n *NS) Close() error {
	if n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	return err
}

// CurrentNS opens the network namespace of the calling goroutine's thread.
// Call it before creating namespaces (NewNS and Do may leave the process's
// main thread parked in another namespace, so /proc/self is not reliable).
func CurrentNS() (*NS, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netlab: open netns: %w", err)
	}
	return &NS{fd: fd}, nil
}

// NewNS creates a fresh network namespace.
func NewNS() (*NS, error) {
	type res struct {
		fd  int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// The thread stays locked: it is discarded when the goroutine ends,
		// so no other goroutine ever runs in the new namespace by accident.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- res{-1, fmt.Errorf("netlab: unshare(CLONE_NEWNET): %w", err)}
			return
		}
		fd, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			err = fmt.Errorf("netlab: open netns: %w", err)
		}
		ch <- res{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return &NS{fd: r.fd}, nil
}

// Do runs fn on an OS thread inside the namespace. Sockets fn creates stay in
// the namespace after it returns.
func (n *NS) Do(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("netlab: setns: %w", err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// Sysctl writes a value under /proc/sys (name with dots or slashes). Run it
// inside Do for per-namespace keys.
func Sysctl(name, value string) error {
	p := filepath.Join("/proc/sys", filepath.FromSlash(replaceDots(name)))
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("netlab: sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// ReadSysctl reads a value under /proc/sys.
func ReadSysctl(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", filepath.FromSlash(replaceDots(name))))
	if err != nil {
		return "", fmt.Errorf("netlab: sysctl %s: %w", name, err)
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b), nil
}

func replaceDots(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}
