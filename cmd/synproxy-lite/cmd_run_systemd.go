package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
	"github.com/synproxy-lite/synproxy-lite/internal/sdnotify"
)

// notifier tells systemd (Type=notify) how the daemon stands: READY=1
// once it serves, RELOADING=1 when SIGHUP starts a graceful restart and
// READY=1 again if that restart is refused or fails, MAINPID= of the new
// process once it has taken over (which then says READY=1 itself), and
// STOPPING=1 when it stops. A process that handed over says nothing more:
// it is no longer the service's main process, and systemd would take its
// STOPPING=1 for the service's. Outside systemd it sends nothing.
type notifier struct {
	log        *slog.Logger
	serving    string // what it serves, for STATUS=: "port 443", "3 ports"
	handedOver atomic.Bool
}

func (n *notifier) send(state ...string) {
	if _, err := sdnotify.Notify(state...); err != nil {
		n.log.Warn("telling systemd the daemon's state", "state", state[0], "err", err)
	}
}

// ready: the daemon serves (after a start, or a graceful restart that
// made this process the main one: hence MAINPID).
func (n *notifier) ready() {
	n.send(sdnotify.Ready, sdnotify.MainPID(os.Getpid()),
		sdnotify.Status(fmt.Sprintf("serving %s (pid %d)", n.serving, os.Getpid())))
}

func (n *notifier) reloading() {
	if n.handedOver.Load() {
		return
	}
	n.send(sdnotify.Reloading, sdnotify.MonotonicUsec(), sdnotify.Status("graceful restart"))
}

// reloadFailed: the restart was refused or failed; this process serves on.
func (n *notifier) reloadFailed(err error) {
	if n.handedOver.Load() {
		return
	}
	n.send(sdnotify.Ready, sdnotify.Status(fmt.Sprintf("serving %s (pid %d); the last reload failed: %v",
		n.serving, os.Getpid(), err)))
}

// tookOver is proxy.ServerConfig.OnHandOver.
func (n *notifier) tookOver(pid int) {
	n.handedOver.Store(true)
	n.send(sdnotify.MainPID(pid))
}

func (n *notifier) stopping() {
	if !n.handedOver.Load() {
		n.send(sdnotify.Stopping, sdnotify.Status("stopping"))
	}
}

// restartCheck is proxy.ServerConfig.RestartCheck: it parses the
// arguments the new process starts with, reads the secret files again and
// validates the settings, as the new process will, without touching the
// host.
func (o *runOptions) restartCheck(log *slog.Logger) func() error {
	return func() error {
		o2, err := parseRunFlags(o.args, io.Discard)
		if err != nil {
			return err
		}
		chooseDrivers(o2.cfg, slog.New(slog.DiscardHandler), false)
		srvs, err := servers(o2.cfg, log, true)
		if err != nil {
			return err
		}
		if len(srvs) != 1 {
			return fmt.Errorf("the configuration now has %d servers (services and ports): a graceful restart moves one; restart the daemon", len(srvs))
		}
		cfg := srvs[0].cfg
		cfg.OnEngine = nil
		_, err = proxy.NewServer(cfg)
		return err
	}
}
