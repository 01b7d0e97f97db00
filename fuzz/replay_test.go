package fuzz

import (
	"path/filepath"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/fuzz/internal/harness"
	"github.com/synproxy-lite/synproxy-lite/fuzz/parity"
)

func corpora(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "parity", "*.stream.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("want corpora of two kernels in testdata/parity, found %v", files)
	}
	return files
}

// TestReplayCorpus replays every committed kernel capture through package
// cookie and requires every sample and every ACK probe to match.
func TestReplayCorpus(t *testing.T) {
	for _, path := range corpora(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			st, err := parity.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := harness.Verify(st)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rep.Failures {
				t.Errorf("mismatch: %s", f)
			}
			for name, fc := range map[string]*harness.FamilyCounts{"IPv4": &rep.V4, "IPv6": &rep.V6} {
				if fc.Samples < 500 || fc.Matches != fc.Samples {
					t.Errorf("%s: %d samples, %d matches", name, fc.Samples, fc.Matches)
				}
				if len(fc.Slots) < 2 {
					t.Errorf("%s: samples from %d time slot(s), want a slot boundary crossed", name, len(fc.Slots))
				}
			}
			for _, kind := range []string{"valid", "age1", "flipbit", "stale", "future"} {
				a := rep.Acks[kind]
				if a == nil || a.Probes == 0 || a.Disagree != 0 {
					t.Errorf("ACK probes %q: %+v", kind, a)
				}
			}
			if a := rep.Acks["valid"]; a != nil && (a.Accepted != a.Probes || a.Connected != a.Probes) {
				t.Errorf("kernel accepted %d and connected %d of %d minted cookies", a.Accepted, a.Connected, a.Probes)
			}
			t.Logf("%s %s: IPv4 %d, IPv6 %d samples bit-exact; %d ACK kinds agree",
				st.Header.Package, st.Header.Version, rep.V4.Matches, rep.V6.Matches, len(rep.Acks))
		})
	}
}
