package hairpin

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
)

// TestProgramRebuilds compiles bpf/hairpin.c with clang, as go generate
// does, and checks that the committed object holds the same program.
func TestProgramRebuilds(t *testing.T) {
	clang, err := exec.LookPath("clang-14")
	if err != nil {
		t.Skip("SKIPPED LOUDLY: no clang-14 to rebuild the XDP program (scripts/test-deps.sh installs it)")
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skip("SKIPPED LOUDLY: no libbpf headers (scripts/test-deps.sh installs libbpf-dev)")
	}
	out := filepath.Join(t.TempDir(), "hairpin.o")
	if b, err := exec.Command(clang, "-O2", "-mcpu=v1", "-g", "-Wall", "-Werror", "-target", "bpfel",
		"-I/usr/include/x86_64-linux-gnu", "-c", "bpf/hairpin.c", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("clang: %v\n%s", err, b)
	}
	fresh, err := ebpf.LoadCollectionSpec(out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("hairpinprog_bpfel.o")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := committed.Programs["hairpin"].Instructions.String(), fresh.Programs["hairpin"].Instructions.String(); a != b {
		t.Errorf("the committed object differs from bpf/hairpin.c: run go generate ./internal/hairpin")
	}
}
