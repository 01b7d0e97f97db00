package handoff

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestLimitsDefaults(t *testing.T) {
	r := (*Limits)(nil).resolve()
	want := Limits{MaxConns: DefaultMaxConns(), SourcePrefix4: 32, SourcePrefix6: 64, KeepAlive: time.Minute,
		UserTimeout: 2 * time.Minute, DialTimeout: 10 * time.Second, MaxDials: 256}
	if r != want {
		t.Errorf("nil Limits resolve to %+v, want %+v", r, want)
	}
	if n, want := DefaultMaxConns(), (nofile()-FDReserve)/FDsPerConn; n != max(1, min(want, 1<<20)) {
		t.Errorf("DefaultMaxConns %d, want (%d-%d)/%d", n, nofile(), FDReserve, FDsPerConn)
	}
	if r := (&Limits{MaxConns: -1, MaxDials: -1, KeepAlive: -1}).resolve(); r.MaxConns != -1 || r.MaxDials != -1 || r.KeepAlive != -1 {
		t.Errorf("negative limits (none) resolve to %+v", r)
	}
}

func TestRefusedError(t *testing.T) {
	for _, err := range []error{ErrMaxConns, ErrPerSource, ErrMaxDials} {
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%v does not wrap ErrRefused", err)
		}
	}
	if errors.Is(ErrMaxConns, ErrPerSource) {
		t.Error("refusals are not told apart")
	}
	if got := ErrPerSource.Error(); got != "handoff: refused: per_source" {
		t.Errorf("Error() = %q", got)
	}
}

// TestSourceSlot: addresses within one source prefix count together,
// whatever the prefix lengths say.
func TestSourceSlot(t *testing.T) {
	var m limiter
	m.init(&Limits{MaxConnsPerSource: 1, SourcePrefix4: 24, SourcePrefix6: 48}, nil)
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"10.99.80.1", "10.99.80.254", true},
		{"10.99.80.1", "10.99.81.1", false},
		{"::ffff:10.99.80.1", "10.99.80.2", true},
		{"fd00:99:80::1", "fd00:99:80:ffff::1", true},
		{"fd00:99:80::1", "fd00:99:81::1", false},
	} {
		a, b := m.sourceSlot(netip.MustParseAddr(tc.a)), m.sourceSlot(netip.MustParseAddr(tc.b))
		if (a == b) != tc.same {
			t.Errorf("%s and %s: slots %d and %d, same source %v", tc.a, tc.b, a, b, tc.same)
		}
	}
	m.init(&Limits{MaxConnsPerSource: 1}, nil) // 32 and 64
	if m.sourceSlot(netip.MustParseAddr("10.99.80.1")) == m.sourceSlot(netip.MustParseAddr("10.99.80.2")) {
		t.Log("10.99.80.1 and .2 collide in the table (possible, 1 in 65536)")
	}
	if m.sourceSlot(netip.MustParseAddr("fd00:99:80::1")) != m.sourceSlot(netip.MustParseAddr("fd00:99:80::2:1")) {
		t.Error("one /64, two sources")
	}
}

// TestLimiter: admit refuses at each limit and release gives back exactly
// what was taken, so a refused client gets in once there is room.
func TestLimiter(t *testing.T) {
	var m limiter
	m.init(&Limits{MaxConns: 3, MaxConnsPerSource: 2, MaxDials: 2}, nil)
	a, b := netip.MustParseAddr("10.99.80.1"), netip.MustParseAddr("10.99.80.2")
	if m.sourceSlot(a) == m.sourceSlot(b) {
		t.Skip("the two sources collide under this seed")
	}
	h1, err := m.admit(a)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := m.admit(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.admit(b); err != ErrMaxDials {
		t.Fatalf("third dial in flight: %v, want ErrMaxDials", err)
	}
	m.dialDone(&h1)
	m.dialDone(&h2)
	if _, err := m.admit(a); err != ErrPerSource {
		t.Fatalf("third from one source: %v, want ErrPerSource", err)
	}
	h3, err := m.admit(b)
	if err != nil {
		t.Fatal(err)
	}
	m.dialDone(&h3)
	if _, err := m.admit(b); err != ErrMaxConns {
		t.Fatalf("fourth: %v, want ErrMaxConns", err)
	}
	var adopted hold
	m.adopt(&adopted, b)
	if m.conns != 4 {
		t.Errorf("adopted connection not counted: %d open", m.conns)
	}
	m.release(&adopted)
	m.release(&h1)
	m.release(&h1) // twice gives back nothing more
	if m.conns != 2 || m.src[m.sourceSlot(a)] != 1 || m.dials != 0 {
		t.Fatalf("after release: conns %d, source a %d, dials %d; want 2, 1, 0", m.conns, m.src[m.sourceSlot(a)], m.dials)
	}
	if _, err := m.admit(a); err != nil {
		t.Fatalf("with room again: %v", err)
	}
	if m.refusedMax.Load() != 1 || m.refusedSrc.Load() != 1 || m.refusedDials.Load() != 1 {
		t.Errorf("refusals counted %d %d %d, want 1 each", m.refusedMax.Load(), m.refusedSrc.Load(), m.refusedDials.Load())
	}
}

// TestAdmitNoAllocs: checking the limits allocates nothing.
func TestAdmitNoAllocs(t *testing.T) {
	var m limiter
	m.init(&Limits{MaxConns: 1, MaxConnsPerSource: 1}, nil)
	a := netip.MustParseAddr("fd00:99:80::1")
	h, _ := m.admit(a)
	_ = h
	if n := testing.AllocsPerRun(1000, func() { m.admit(a) }); n != 0 {
		t.Errorf("a refusal allocates %v times", n)
	}
	m.l.MaxConns = -1
	if n := testing.AllocsPerRun(1000, func() { m.admit(a) }); n != 0 {
		t.Errorf("a per-source refusal allocates %v times", n)
	}
}
