package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// SocketEnv is the environment variable that names the service manager's
// notification socket.
const SocketEnv = "NOTIFY_SOCKET"

// States of sd_notify(3).
const (
	Ready     = "READY=1"
	Reloading = "RELOADING=1"
	Stopping  = "STOPPING=1"
)

// MainPID says that pid is the service's main process from now on.
func MainPID(pid int) string { return "MAINPID=" + strconv.Itoa(pid) }

// Status is a line of free text that systemctl status shows. Newlines
// become spaces: each assignment is one line.
func Status(s string) string {
	return "STATUS=" + strings.ReplaceAll(strings.ReplaceAll(s, "\r", " "), "\n", " ")
}

// MonotonicUsec is the assignment that dates a RELOADING=1: the
// CLOCK_MONOTONIC time now, in microseconds. Empty where that clock cannot
// be read (then send nothing for it).
func MonotonicUsec() string {
	us, ok := monotonicUsec()
	if !ok {
		return ""
	}
	return "MONOTONIC_USEC=" + strconv.FormatUint(us, 10)
}

// ErrBadState is returned for an assignment that is empty, lacks '=' or
// spans lines.
var ErrBadState = errors.New("sdnotify: an assignment is one KEY=VALUE line")

// Notify sends the assignments (empty ones skipped) in one datagram to the
// socket $NOTIFY_SOCKET names. It reports whether it sent: false, nil when
// $NOTIFY_SOCKET is unset.
func Notify(state ...string) (bool, error) {
	socket := os.Getenv(SocketEnv)
	if socket == "" {
		return false, nil
	}
	return true, NotifySocket(socket, state...)
}

// NotifySocket sends the assignments to socket: a file system path, or an
// abstract socket's name after '@'.
func NotifySocket(socket string, state ...string) error {
	var b strings.Builder
	for _, s := range state {
		if s == "" {
			continue
		}
		if !strings.Contains(s, "=") || strings.ContainsAny(s, "\n") {
			return fmt.Errorf("%w: %q", ErrBadState, s)
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return nil
	}
	switch {
	case socket == "":
		return errors.New("sdnotify: no socket")
	case socket[0] != '/' && socket[0] != '@':
		return fmt.Errorf("sdnotify: %s=%q: not a unix socket path or abstract name", SocketEnv, socket)
	}
	// Go maps a leading '@' to the abstract namespace's NUL byte.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(b.String())); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}
