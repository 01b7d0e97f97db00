package handoff

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// TestBackendsRoundRobin: with Backends, connections go to each backend in
// turn, a backend whose dial fails is skipped for the next one, and the
// error names every backend when none answers.
func TestBackendsRoundRobin(t *testing.T) {
	down := map[string]bool{}
	var got []string
	p := &Proxy{Backend: "a:1", Backends: []string{"b:1", "c:1"},
		Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
			got = append(got, addr)
			if down[addr] {
				return nil, errors.New("connection refused")
			}
			c, _ := net.Pipe()
			return c, nil
		}}
	dialN := func(n int) []string {
		got = nil
		var ok []string
		for range n {
			c, err := p.dialNext(context.Background())
			if err != nil {
				ok = append(ok, "error")
				continue
			}
			c.Close()
			ok = append(ok, got[len(got)-1])
		}
		return ok
	}
	if s := strings.Join(dialN(4), " "); s != "a:1 b:1 c:1 a:1" {
		t.Errorf("round-robin: %s", s)
	}
	down["c:1"] = true
	if s := strings.Join(dialN(3), " "); s != "b:1 a:1 a:1" { // c fails over to a
		t.Errorf("failover: %s (dialled %v)", s, got)
	}
	down["a:1"], down["b:1"] = true, true
	_, err := p.dialNext(context.Background())
	var oe *OpError
	if err == nil || !errors.As(err, &oe) || !strings.Contains(err.Error(), "a:1") || !strings.Contains(err.Error(), "c:1") {
		t.Errorf("all down: %v", err)
	}
	one := &Proxy{Backend: "a:1", Dial: p.Dial}
	got = nil
	if _, err := one.dialNext(context.Background()); err == nil || len(got) != 1 {
		t.Errorf("one backend: %v, dialled %v", err, got)
	}
}
