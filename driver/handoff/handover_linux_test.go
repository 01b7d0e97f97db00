package handoff_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// socketPair returns a connected pair of stream sockets: one end as a
// connection for the test, the other as a file for Adopt.
func socketPair(t *testing.T, name string) (net.Conn, *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), name)
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, os.NewFile(uintptr(fds[1]), name+"-proxied")
}

// counting returns n bytes of a pattern that shows a lost or repeated chunk.
func counting(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7 >> 3)
	}
	return b
}

// TestHandOver moves a splice that is carrying a stream from one Proxy to
// another (as a graceful restart moves it to a new process) and checks
// that no byte is lost, duplicated or reordered, that half-closes pass
// through before and after, and that a failed hand-over resumes the splice
// where it was.
func TestHandOver(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failStart  bool // start returns an error: the splice stays
		closeFirst bool // the client half-closes before the hand-over
	}{
		{"moved", false, false},
		{"start fails", true, false},
		{"client half-closed", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, cf := socketPair(t, "client")
			backend, bf := socketPair(t, "backend")
			var p1, p2 handoff.Proxy
			defer p1.Close()
			defer p2.Close()
			if err := p1.Adopt([]handoff.Parked{{Client: cf, Backend: bf}}); err != nil {
				t.Fatal(err)
			}
			up, down := counting(1<<20), counting(3<<20)
			// The backend streams down while the hand-over happens.
			var got bytes.Buffer
			var rcvd []byte
			var rerr error
			var wg sync.WaitGroup
			wg.Add(3)
			rdone := make(chan struct{})
			go func() {
				defer wg.Done()
				defer close(rdone)
				rcvd, rerr = io.ReadAll(backend)
			}()
			go func() {
				defer wg.Done()
				for b := down; len(b) > 0; b = b[min(len(b), 4096):] {
					if _, err := backend.Write(b[:min(len(b), 4096)]); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				io.CopyN(&got, client, int64(len(down)))
			}()
			half := up[:len(up)/2]
			if _, err := client.Write(half); err != nil {
				t.Fatal(err)
			}
			if tc.closeFirst {
				client.(*net.UnixConn).CloseWrite()
				<-rdone // the end of stream went through
			}
			var passed []handoff.Parked
			moved, kept, err := p1.HandOver(5*time.Second, func(conns []handoff.Parked) error {
				passed = conns
				if tc.failStart {
					return errors.New("no new process")
				}
				return p2.Adopt(conns)
			})
			switch {
			case tc.failStart && (err == nil || moved != 0 || kept != 1 || len(passed) != 1):
				t.Fatalf("HandOver = %d, %d, %v (%d passed), want 0 moved, 1 kept, an error, 1 passed", moved, kept, err, len(passed))
			case !tc.failStart && (err != nil || moved != 1 || kept != 0):
				t.Fatalf("HandOver = %d, %d, %v, want 1 moved", moved, kept, err)
			case passed[0].ClientDone != tc.closeFirst || passed[0].BackendDone:
				t.Errorf("passed %+v, want ClientDone %v", passed[0], tc.closeFirst)
			}
			if !tc.failStart {
				p1.Wait() // the moved splice ended in the first Proxy
			}
			if !tc.closeFirst {
				if _, err := client.Write(up[len(half):]); err != nil {
					t.Fatal(err)
				}
				client.(*net.UnixConn).CloseWrite()
			}
			want := up
			if tc.closeFirst {
				want = half
			}
			// The client's end of stream reaches the backend, after
			// every byte in order.
			wg.Wait()
			if rerr != nil || !bytes.Equal(rcvd, want) {
				t.Errorf("backend received %d bytes (%v), want the %d sent in order", len(rcvd), rerr, len(want))
			}
			if !bytes.Equal(got.Bytes(), down) {
				t.Errorf("client received %d bytes, want the %d sent in order", got.Len(), len(down))
			}
			backend.(*net.UnixConn).CloseWrite()
			if rest, err := io.ReadAll(client); err != nil || len(rest) != 0 {
				t.Errorf("after the stream: %q, %v; want a clean end", rest, err)
			}
		})
	}
}

// TestAdoptBadFile: a file that is not a stream socket is refused and
// nothing is started.
func TestAdoptBadFile(t *testing.T) {
	_, cf := socketPair(t, "client")
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	var p handoff.Proxy
	defer p.Close()
	if err := p.Adopt([]handoff.Parked{{Client: cf, Backend: f}}); err == nil {
		t.Fatal("Adopt of /dev/null succeeded")
	}
}
