package kernel

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// BootConfig describes one qemu run. Nil fields take defaults.
type BootConfig struct {
	// Initrd is the initramfs path.
	Initrd string
	// Dir receives console.log and channel.out. Required.
	Dir string
	// Append is added to the kernel command line.
	Append string
	// MemoryMB defaults to 1024.
	MemoryMB int
	// Timeout bounds the whole run; default 5 minutes.
	Timeout time.Duration
}

// Boot runs the kernel under qemu-system-x86_64 with TCG (nested KVM is not
// reliable on CI machines), no network card, the console on the first serial
// port (Dir/console.log) and the result channel on the second one
// (Dir/channel.out). It returns when the guest powers off.
func (k *Kernel) Boot(ctx context.Context, cfg BootConfig) (console, channel string, err error) {
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 1024
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	console = filepath.Join(cfg.Dir, "console.log")
	channel = filepath.Join(cfg.Dir, "channel.out")
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	args := []string{
		"-accel", "tcg", "-cpu", "max", "-m", strconv.Itoa(cfg.MemoryMB), "-smp", "1",
		"-nic", "none", "-display", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:" + console, "-serial", "file:" + channel,
		"-kernel", k.Vmlinuz, "-initrd", cfg.Initrd,
		"-append", "console=ttyS0 panic=-1 oops=panic loglevel=4 " + cfg.Append,
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tail, _ := os.ReadFile(console)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return console, channel, fmt.Errorf("kernel: qemu: %w: %s\nconsole tail:\n%s", err, stderr.String(), tail)
	}
	return console, channel, nil
}
