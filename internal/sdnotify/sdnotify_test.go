package sdnotify

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket at name (a path, or '@' abstract) and
// returns a function that reads one datagram.
func listen(t *testing.T, name string) func() string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Skipf("SKIPPED LOUDLY: unixgram sockets unavailable: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return func() string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 4096)
		n, err := c.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:n])
	}
}

func TestNotify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		socket func(t *testing.T) string
	}{
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }},
		{"abstract", func(t *testing.T) string { return "@sdnotify-test-" + t.Name() + time.Now().Format("150405.000000000") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			socket := tc.socket(t)
			recv := listen(t, socket)
			t.Setenv(SocketEnv, socket)
			sent, err := Notify(Ready, "", Status("serving\nport 443"), MainPID(42))
			if err != nil || !sent {
				t.Fatalf("Notify: sent %v, %v", sent, err)
			}
			if got, want := recv(), "READY=1\nSTATUS=serving port 443\nMAINPID=42\n"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			if _, err := Notify(Reloading, MonotonicUsec()); err != nil {
				t.Fatal(err)
			}
			if got := recv(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
				t.Errorf("got %q", got)
			}
		})
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv(SocketEnv, "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Errorf("without %s: sent %v, %v", SocketEnv, sent, err)
	}
}

func TestNotifyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, socket, state string
		bad                 bool
	}{
		{"no equals", "/nonexistent", "READY", true},
		{"two lines", "/nonexistent", "STATUS=a\nREADY=1", true},
		{"relative socket", "notify", Ready, false},
		{"missing socket", "/nonexistent/notify", Ready, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NotifySocket(tc.socket, tc.state)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrBadState) != tc.bad {
				t.Errorf("%v: ErrBadState %v, want %v", err, errors.Is(err, ErrBadState), tc.bad)
			}
			if !strings.HasPrefix(err.Error(), "sdnotify: ") {
				t.Errorf("%v: not prefixed with the package name", err)
			}
		})
	}
}

func TestMonotonicUsec(t *testing.T) {
	a := MonotonicUsec()
	if a == "" {
		t.Skip("SKIPPED LOUDLY: no CLOCK_MONOTONIC on this platform")
	}
	time.Sleep(2 * time.Millisecond)
	b := MonotonicUsec()
	if len(a) > len(b) || len(a) == len(b) && a >= b {
		t.Errorf("MONOTONIC_USEC went from %s to %s", a, b)
	}
}
