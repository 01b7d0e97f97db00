package explain

import "testing"

// BenchmarkBuild is what the page computes on every keystroke.
func BenchmarkBuild(b *testing.B) {
	in := Default()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForgeGuess is the cost of one forged guess in the forging lab.
func BenchmarkForgeGuess(b *testing.B) {
	in := Default()
	const tries = 1 << 16
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Forge(in, tries, true, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/tries, "ns/guess")
}
