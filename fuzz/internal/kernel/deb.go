package kernel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Kernel is an extracted Debian kernel image package.
type Kernel struct {
	Package string // real package name, e.g. linux-image-6.1.0-56-amd64
	Version string // Debian package version, e.g. 6.1.192-2
	Release string // uname -r, e.g. 6.1.0-56-amd64
	Root    string // extraction directory
	Vmlinuz string // path to the bzImage
	HZ      uint32 // CONFIG_HZ from the packaged config
	Config  map[string]string
}

// DefaultCacheDir is where packages are kept between runs.
func DefaultCacheDir() string {
	if d := os.Getenv("SYNPROXY_LITE_KERNEL_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "synproxy-lite", "kernels")
}

// Resolve turns a metapackage (linux-image-amd64, linux-image-6.12-amd64)
// into the real image package it depends on. A real package resolves to
// itself.
func Resolve(ctx context.Context, pkg string) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("kernel: apt-cache depends %s: %w", pkg, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") && !strings.HasSuffix(f[1], "-amd64-unsigned") {
			return f[1], nil
		}
	}
	// No linux-image dependency: assume it is the image package itself.
	return pkg, nil
}

// Fetch downloads (once, into cacheDir) and extracts the kernel package pkg,
// a metapackage or a real image package name.
func Fetch(ctx context.Context, pkg, cacheDir string) (*Kernel, error) {
	real, err := Resolve(ctx, pkg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	deb, err := findDeb(cacheDir, real)
	if err != nil {
		cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", real)
		cmd.Dir = cacheDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("kernel: apt-get download %s: %w: %s", real, err, out)
		}
		if deb, err = findDeb(cacheDir, real); err != nil {
			return nil, err
		}
	}
	ver, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Version").Output()
	if err != nil {
		return nil, fmt.Errorf("kernel: dpkg-deb -f %s: %w", deb, err)
	}
	root := filepath.Join(cacheDir, "x", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if _, err := os.Stat(filepath.Join(root, ".done")); err != nil {
		os.RemoveAll(root)
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("kernel: %w", err)
		}
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("kernel: dpkg-deb -x %s: %w: %s", deb, err, out)
		}
		if err := os.WriteFile(filepath.Join(root, ".done"), nil, 0o644); err != nil {
			return nil, fmt.Errorf("kernel: %w", err)
		}
	}
	k := &Kernel{Package: real, Version: strings.TrimSpace(string(ver)), Root: root}
	mods, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(mods) != 1 {
		return nil, fmt.Errorf("kernel: %s: expected one lib/modules/<release>, found %d", deb, len(mods))
	}
	k.Release = filepath.Base(mods[0])
	k.Vmlinuz = filepath.Join(root, "boot", "vmlinuz-"+k.Release)
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	k.Config, err = readConfig(filepath.Join(root, "boot", "config-"+k.Release))
	if err != nil {
		return nil, err
	}
	hz, err := strconv.ParseUint(k.Config["CONFIG_HZ"], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("kernel: CONFIG_HZ %q: %w", k.Config["CONFIG_HZ"], err)
	}
	k.HZ = uint32(hz)
	return k, nil
}

func findDeb(dir, pkg string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*_amd64.deb"))
	if len(m) == 0 {
		return "", fmt.Errorf("kernel: %s not in %s", pkg, dir)
	}
	return m[len(m)-1], nil
}

func readConfig(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	cfg := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "CONFIG_") {
			cfg[k] = strings.Trim(v, `"`)
		}
	}
	if len(cfg) == 0 {
		return nil, errors.New("kernel: empty config " + path)
	}
	return cfg, nil
}
