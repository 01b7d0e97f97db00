package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/fuzz/internal/kernel"
	"github.com/synproxy-lite/synproxy-lite/fuzz/parity"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Modules the guest loads (their dependencies come along).
var Modules = []string{"veth", "nft_ct", "nft_synproxy"}

// DefaultRule is the synproxy statement the guest installs.
var DefaultRule = packet.Rule{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, Timestamp: true, SACKPerm: true}

// Options configure one run. Zero fields take defaults.
type Options struct {
	Package  string // apt package, e.g. linux-image-amd64
	CacheDir string
	WorkDir  string // default: a temporary directory
	Samples  int    // default 100000
	Acks     int    // ACK probes per family and kind, default 100
	Seed     int64  // default: time-based
	Batch    int    // default 256
	Timeout  time.Duration
	NoCross  bool // do not wait for a slot boundary (quick runs)
	Log      func(format string, args ...any)
}

// Run is the outcome of one kernel run.
type Run struct {
	Kernel   *kernel.Kernel
	Stream   *parity.Stream
	Channel  string // path of the raw channel output
	Console  string // path of the console log
	BootTime time.Duration
}

// Boot builds the guest, boots the kernel and returns the parsed stream.
func Boot(ctx context.Context, o Options) (*Run, error) {
	if o.CacheDir == "" {
		o.CacheDir = kernel.DefaultCacheDir()
	}
	if o.Samples == 0 {
		o.Samples = 100000
	}
	if o.Acks == 0 {
		o.Acks = 100
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	if o.Batch == 0 {
		o.Batch = 256
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if o.WorkDir == "" {
		d, err := os.MkdirTemp("", "spl-parity-")
		if err != nil {
			return nil, err
		}
		o.WorkDir = d
	}
	k, err := kernel.Fetch(ctx, o.Package, o.CacheDir)
	if err != nil {
		return nil, err
	}
	o.Log("kernel %s %s (HZ %d)", k.Package, k.Version, k.HZ)
	mods, err := k.Modules(Modules...)
	if err != nil {
		return nil, err
	}
	init, err := BuildInit(ctx, o.WorkDir)
	if err != nil {
		return nil, err
	}
	cfg := parity.Config{
		Samples: o.Samples, Seed: o.Seed, Acks: o.Acks, Rule: DefaultRule, Batch: o.Batch,
		WaitMs: 3000, CrossSlot: !o.NoCross, Families: []int{4, 6}, HZ: k.HZ,
	}
	cj, _ := json.Marshal(cfg)
	files := []kernel.File{
		{Name: "init", Mode: kernel.ModeFile | 0o755, Data: init},
		{Name: "parity.json", Mode: kernel.ModeFile | 0o644, Data: cj},
		{Name: "dev/console", Mode: kernel.ModeChr | 0o600, Rdev: [2]uint32{5, 1}},
		{Name: "proc", Mode: kernel.ModeDir | 0o755},
		{Name: "sys", Mode: kernel.ModeDir | 0o755},
	}
	var names []string
	for i, m := range mods {
		files = append(files, kernel.File{Name: fmt.Sprintf("modules/%02d-%s.ko", i, m.Name), Mode: kernel.ModeFile | 0o644, Data: m.Data})
		names = append(names, m.Name)
	}
	o.Log("modules: %s", strings.Join(names, " "))
	var buf bytes.Buffer
	if err := kernel.WriteInitramfs(&buf, files); err != nil {
		return nil, err
	}
	initrd := filepath.Join(o.WorkDir, "initramfs.cpio")
	if err := os.WriteFile(initrd, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	t0 := time.Now()
	console, channel, err := k.Boot(ctx, kernel.BootConfig{Initrd: initrd, Dir: o.WorkDir, Timeout: o.Timeout})
	run := &Run{Kernel: k, Channel: channel, Console: console, BootTime: time.Since(t0)}
	if err != nil {
		return run, err
	}
	st, err := parity.ReadFile(channel)
	run.Stream = st
	if err != nil {
		return run, err
	}
	if st.Summary == nil {
		tail, _ := os.ReadFile(console)
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		return run, fmt.Errorf("harness: guest wrote no summary; console tail:\n%s", tail)
	}
	if st.Summary.Error != "" {
		return run, fmt.Errorf("harness: guest: %s", st.Summary.Error)
	}
	st.Header.Package = k.Package
	st.Header.Version = k.Version
	return run, nil
}

// BuildInit compiles the static guest /init.
func BuildInit(ctx context.Context, dir string) ([]byte, error) {
	out := filepath.Join(dir, "parity-init")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./fuzz/cmd/parity-init")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("harness: build parity-init: %w: %s", err, b)
	}
	return os.ReadFile(out)
}

// ErrNoQemu is returned by Available when the host cannot run the harness.
var ErrNoQemu = errors.New("harness: qemu-system-x86_64 not installed")

// Available reports whether this host can run the harness (root, qemu,
// apt-get and dpkg-deb present) and why not.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("harness: needs root (apt-get download into the cache, /dev/kvm-free qemu is fine)")
	}
	for _, t := range []string{"qemu-system-x86_64", "apt-get", "apt-cache", "dpkg-deb", "go"} {
		if _, err := exec.LookPath(t); err != nil {
			if t == "qemu-system-x86_64" {
				return ErrNoQemu
			}
			return fmt.Errorf("harness: %s not found", t)
		}
	}
	return nil
}
