package afxdp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
)

// TestProgramRebuilds compiles bpf/xdp.c with clang, as go generate does,
// and checks that the committed object holds the same program and maps: the
// object is not stale. Without clang or libbpf's headers it skips, loudly.
func TestProgramRebuilds(t *testing.T) {
	clang := ""
	for _, c := range []string{"clang-14", "clang"} {
		if p, err := exec.LookPath(c); err == nil {
			clang = p
			break
		}
	}
	if clang == "" {
		t.Skip("SKIPPED LOUDLY: no clang to rebuild the XDP program (scripts/test-deps.sh installs clang-14)")
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skip("SKIPPED LOUDLY: no libbpf headers (scripts/test-deps.sh installs libbpf-dev)")
	}
	out := filepath.Join(t.TempDir(), "xdp.o")
	cmd := exec.Command(clang, "-O2", "-mcpu=v1", "-g", "-Wall", "-Werror", "-target", "bpfel",
		"-I/usr/include/x86_64-linux-gnu", "-c", "bpf/xdp.c", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clang: %v\n%s", err, b)
	}
	fresh, err := ebpf.LoadCollectionSpec(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := loadXdpBytes("xdpprog_bpfel.o")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range committed.Programs {
		f, ok := fresh.Programs[name]
		if !ok {
			t.Errorf("program %s is not in the rebuilt object", name)
			continue
		}
		if a, b := p.Instructions.String(), f.Instructions.String(); a != b {
			t.Errorf("program %s differs from its source: run go generate ./driver/afxdp\ncommitted:\n%s\nrebuilt:\n%s", name, a, b)
		}
	}
	for name, m := range committed.Maps {
		f, ok := fresh.Maps[name]
		if !ok || f.Type != m.Type || f.KeySize != m.KeySize || f.ValueSize != m.ValueSize || f.MaxEntries != m.MaxEntries {
			t.Errorf("map %s: committed %v, rebuilt %v", name, m, f)
		}
	}
	if len(fresh.Programs) != len(committed.Programs) || len(fresh.Maps) != len(committed.Maps) {
		t.Errorf("rebuilt: %d programs, %d maps; committed: %d, %d", len(fresh.Programs), len(fresh.Maps),
			len(committed.Programs), len(committed.Maps))
	}
}

func loadXdpBytes(file string) (*ebpf.CollectionSpec, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ebpf.LoadCollectionSpecFromReader(bytes.NewReader(b))
}

// TestProgramLoads: the kernel's verifier accepts the committed program,
// with no kernel BTF needed.
func TestProgramLoads(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: loading an XDP program needs root")
	}
	p, err := loadProgram(testPort, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var v uint32
	if err := p.objs.Config.Lookup(uint32(0), &v); err != nil || v != netPort(testPort) {
		t.Fatalf("port in the program's map: %#x, %v", v, err)
	}
}
