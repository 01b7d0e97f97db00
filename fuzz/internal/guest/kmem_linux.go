package guest

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Kallsyms returns the addresses of the named symbols from /proc/kallsyms
// (root with kptr_restrict < 2). A name present at two different addresses
// is an error.
func Kallsyms(names ...string) (map[string]uint64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("guest: %w", err)
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 || !want[fl[2]] || len(fl) > 3 {
			continue
		}
		a, err := strconv.ParseUint(fl[0], 16, 64)
		if err != nil || a == 0 {
			return nil, fmt.Errorf("guest: kallsyms %s: address %q (kptr_restrict?)", fl[2], fl[0])
		}
		if old, ok := out[fl[2]]; ok && old != a {
			return nil, fmt.Errorf("guest: kallsyms: %s is ambiguous (%x, %x)", fl[2], old, a)
		}
		out[fl[2]] = a
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("guest: kallsyms: no symbol %s", n)
		}
	}
	return out, sc.Err()
}

// Kcore reads kernel virtual memory through /proc/kcore.
type Kcore struct {
	f     *os.File
	loads []*elf.Prog
}

// OpenKcore opens /proc/kcore and indexes its PT_LOAD segments.
func OpenKcore() (*Kcore, error) {
	f, err := os.Open("/proc/kcore")
	if err != nil {
		return nil, fmt.Errorf("guest: %w", err)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("guest: /proc/kcore: %w", err)
	}
	k := &Kcore{f: f}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD {
			k.loads = append(k.loads, p)
		}
	}
	return k, nil
}

// Close closes /proc/kcore.
func (k *Kcore) Close() error { return k.f.Close() }

// Read reads len(b) bytes at kernel virtual address va.
func (k *Kcore) Read(va uint64, b []byte) error {
	for _, p := range k.loads {
		if va >= p.Vaddr && va+uint64(len(b)) <= p.Vaddr+p.Memsz {
			_, err := k.f.ReadAt(b, int64(p.Off+(va-p.Vaddr)))
			if err != nil {
				return fmt.Errorf("guest: kcore read %#x: %w", va, err)
			}
			return nil
		}
	}
	return fmt.Errorf("guest: kcore: %#x not mapped", va)
}

// U64 reads a little-endian (x86-64) u64.
func (k *Kcore) U64(va uint64) (uint64, error) {
	var b [8]byte
	if err := k.Read(va, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}
