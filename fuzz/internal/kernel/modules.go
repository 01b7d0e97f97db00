package kernel

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module is a decompressed kernel module ready for init_module.
type Module struct {
	Name string
	Data []byte
}

func normName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleIndex maps module names to their files in the package.
func (k *Kernel) moduleIndex() (map[string]string, error) {
	idx := map[string]string{}
	dir := filepath.Join(k.Root, "lib", "modules", k.Release, "kernel")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := d.Name()
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if strings.HasSuffix(base, ext) {
				idx[normName(strings.TrimSuffix(base, ext))] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	return idx, nil
}

func readModule(path string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(path, ".xz"):
		tool = "xz"
	case strings.HasSuffix(path, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(path, ".gz"):
		tool = "gzip"
	default:
		return os.ReadFile(path)
	}
	out, err := exec.Command(tool, "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("kernel: %s -dc %s: %w", tool, path, err)
	}
	return out, nil
}

// modinfo returns the key=value pairs of a module's .modinfo section.
func modinfo(data []byte) (map[string][]string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("kernel: module: %w", err)
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("kernel: module has no .modinfo")
	}
	b, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("kernel: .modinfo: %w", err)
	}
	info := map[string][]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			info[k] = append(info[k], v)
		}
	}
	return info, nil
}

// Modules returns the named modules and everything they depend on
// (depends= and softdep pre: entries of their .modinfo), decompressed, in an
// order in which they can be loaded. Modules built into the kernel are
// skipped silently when the package has no file for them and the config
// says =y.
func (k *Kernel) Modules(names ...string) ([]Module, error) {
	idx, err := k.moduleIndex()
	if err != nil {
		return nil, err
	}
	var out []Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, soft bool) error
	visit = func(name string, soft bool) error {
		name = normName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("kernel: module dependency cycle at %s", name)
		case 2:
			return nil
		}
		path, ok := idx[name]
		if !ok && soft {
			// softdeps name aliases (crc32c); take the generic implementation.
			path, ok = idx[name+"_generic"]
			name += "_generic"
		}
		if !ok {
			if soft {
				state[name] = 2
				return nil
			}
			return fmt.Errorf("kernel: module %s not found in %s", name, k.Package)
		}
		state[name] = 1
		data, err := readModule(path)
		if err != nil {
			return err
		}
		info, err := modinfo(data)
		if err != nil {
			return fmt.Errorf("%w (%s)", err, path)
		}
		for _, sd := range info["softdep"] {
			f := strings.Fields(sd)
			pre := false
			for _, w := range f {
				switch w {
				case "pre:":
					pre = true
				case "post:":
					pre = false
				default:
					if pre {
						if err := visit(w, true); err != nil {
							return err
						}
					}
				}
			}
		}
		for _, d := range info["depends"] {
			for _, dep := range strings.Split(d, ",") {
				if dep = strings.TrimSpace(dep); dep != "" {
					if err := visit(dep, false); err != nil {
						return err
					}
				}
			}
		}
		state[name] = 2
		out = append(out, Module{Name: name, Data: data})
		return nil
	}
	for _, n := range names {
		if err := visit(n, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}
