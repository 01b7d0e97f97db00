package proxy

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// channelPair returns both ends of a restart channel.
func channelPair(t *testing.T) (old, new *channel) {
	t.Helper()
	old, f, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	new, err = fileChannel(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close(); new.Close() })
	return old, new
}

// TestRestartChannelManyConns passes 50,000 connections' state, more
// than an environment variable can hold (the list the restart used to
// pass there, 3 bytes a connection, fails exec with E2BIG beyond about
// 43,000: one variable is at most 128 KiB). Every entry carries two
// descriptors (duplicates of two pipe ends, which the receiver closes as
// they come, so the test stays under the descriptor limit).
func TestRestartChannelManyConns(t *testing.T) {
	const n = 50000
	old, new := channelPair(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	conns := make([]handoff.Parked, n)
	for i := range conns {
		conns[i] = handoff.Parked{Client: r, Backend: w, ClientDone: i%3 == 0, BackendDone: i%5 == 0}
	}
	sent := make(chan error, 1)
	go func() { sent <- old.sendConns(conns) }()
	i := 0
	var bad []string
	got, err := new.recvConns(func(p handoff.Parked) {
		var st unix.Stat_t
		for _, f := range []*os.File{p.Client, p.Backend} {
			if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
				bad = append(bad, "entry "+f.Name()+": not the pipe")
			}
			f.Close()
		}
		if p.ClientDone != (i%3 == 0) || p.BackendDone != (i%5 == 0) {
			bad = append(bad, "entry with the wrong directions ended")
		}
		i++
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if got != n || i != n {
		t.Errorf("received %d connections (%d calls), want %d", got, i, n)
	}
	if len(bad) > 0 {
		t.Errorf("%d bad entries, the first: %s", len(bad), bad[0])
	}
}

// TestRestartEnvironmentTooSmall shows why the state does not pass in
// the environment: the list of 50,000 connections' directions, as a
// variable, makes exec fail.
func TestRestartEnvironmentTooSmall(t *testing.T) {
	cmd := exec.Command("/bin/true")
	cmd.Env = []string{"SYNPROXY_LITE_INHERIT=" + strings.Repeat("00,", 50000)}
	err := cmd.Run()
	if !errors.Is(err, syscall.E2BIG) {
		t.Fatalf("exec with 50,000 entries in a variable: %v, want E2BIG", err)
	}
}

func TestRestartChannelHello(t *testing.T) {
	k, err := cookie.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		queue uint16
		key   *cookie.Key
	}{
		{"key", 12, &k},
		{"no key", 65535, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, new := channelPair(t)
			if err := old.sendHello(tc.queue, tc.key); err != nil {
				t.Fatal(err)
			}
			q, key, err := new.recvHello()
			if err != nil {
				t.Fatal(err)
			}
			if q != tc.queue || (key == nil) != (tc.key == nil) || (key != nil && key.Bytes() != tc.key.Bytes()) {
				t.Errorf("got queue %d key %v, want %d %v", q, key, tc.queue, tc.key)
			}
		})
	}
}

// TestRestartChannelBad: what the receiving side refuses, and that it
// closes the descriptors of a refused message.
func TestRestartChannelBad(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		fds  int
	}{
		{"wrong type", []byte{msgReady}, 0},
		{"descriptors missing", []byte{msgConns, 0, 0}, 2},
		{"descriptors with the end", []byte{msgEnd, 0, 0, 0, 0}, 2},
		{"end with a wrong count", []byte{msgEnd, 0, 0, 0, 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, new := channelPair(t)
			var fds []int
			for range tc.fds {
				fds = append(fds, int(os.Stdin.Fd()))
			}
			if err := old.send(tc.msg, fds); err != nil {
				t.Fatal(err)
			}
			n, err := new.recvConns(func(p handoff.Parked) { p.Client.Close(); p.Backend.Close() })
			if err == nil || n != 0 {
				t.Errorf("received %d, %v; want an error", n, err)
			}
		})
	}
	t.Run("closed", func(t *testing.T) {
		old, new := channelPair(t)
		old.Close()
		if _, err := new.expect(msgServing); err == nil {
			t.Error("no error from a closed channel")
		}
	})
}
