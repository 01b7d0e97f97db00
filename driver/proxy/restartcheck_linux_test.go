package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// restartCheckEnv makes the test binary a Server whose RestartCheck
// refuses (see restartCheckMain).
const restartCheckEnv = "SPL_PROXY_TEST_RESTARTCHECK"

var errInvalid = errors.New("the new settings are invalid")

// restartCheckMain starts a Server with a Backend whose RestartCheck
// fails, asks it for a graceful restart, and prints what happened: the
// error, whether RestartCommand ran, whether OnHandOver ran, and whether
// the engine still serves.
func restartCheckMain(backend string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	commandRan, handedOver := false, false
	srv, err := proxy.NewServer(&proxy.ServerConfig{Port: 8031, Backend: netip.MustParseAddrPort(backend),
		Table: "spl_restartcheck", Queue: 40, Logger: log,
		RestartCheck: func() error { return errInvalid },
		RestartCommand: func() (*exec.Cmd, error) {
			commandRan = true
			return nil, errors.New("must not run")
		},
		OnHandOver: func(int) { handedOver = true }})
	if err != nil {
		fmt.Println("NewServer:", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		fmt.Println("Start:", err)
		return 1
	}
	before := srv.Engine()
	err = srv.Restart()
	fmt.Printf("refused=%v command=%v handover=%v same-engine=%v err=%v\n",
		errors.Is(err, errInvalid), commandRan, handedOver, srv.Engine() == before && before != nil, err)
	if err := srv.Close(); err != nil {
		fmt.Println("Close:", err)
		return 1
	}
	return 0
}

// TestRestartCheckRefuses: a RestartCheck error refuses the graceful
// restart before anything happens: no new process, no hand-over, the same
// engine serving, and the error, named, from Restart.
func TestRestartCheckRefuses(t *testing.T) {
	netlabtest.Need(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skipf("SKIPPED LOUDLY: nft not installed (scripts/test-deps.sh installs it): %v", err)
	}
	p := netlabtest.NewPair(t, "splrc", netip.MustParsePrefix("10.99.31.0/24"), netip.MustParsePrefix("fd00:99:31::/64"))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := p.B.Command(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), restartCheckEnv+"="+netip.AddrPortFrom(p.B4, 8032).String())
	var stdout, stderr syncBuf
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := p.B.Run(cmd)
	out := stdout.String()
	if err != nil {
		t.Fatalf("server: %v\n%s\n%s", err, out, stderr.String())
	}
	t.Logf("server: %s", out)
	if want := "refused=true command=false handover=false same-engine=true err=proxy: restart refused"; !strings.HasPrefix(out, want) {
		t.Errorf("got %q, want %q...\n%s", out, want, stderr.String())
	}
	if !strings.Contains(stderr.String(), "graceful restart refused; carrying on unchanged") {
		t.Errorf("the refusal is not logged:\n%s", stderr.String())
	}
}
