package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// A Go service that serves HTTP on port 8080 behind the SYN proxy: only
// clients that proved their cookie reach the handler. It needs root (or
// CAP_NET_ADMIN and CAP_NET_RAW), so it has no output to check here.
func ExampleListen() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := proxy.Listen(ctx, &proxy.Config{Port: 8080, Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close() // removes the nft table
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s\n", r.RemoteAddr)
	}))
	log.Println(err, ln.Counters().HandedOver.Load(), "connections handed over")
}

// A Config without a port is refused before anything is installed.
func ExampleConfig() {
	_, err := proxy.Listen(context.Background(), &proxy.Config{Workers: 2})
	fmt.Println(errors.Is(err, proxy.ErrConfig))
	// Output: true
}

// The daemon's wiring: a Server that splices proven connections to a
// backend, with a graceful restart on SIGHUP. It needs root, so it has no
// output to check here.
func ExampleServer() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	srv, err := proxy.NewServer(&proxy.ServerConfig{Port: 80, Workers: 2,
		Backend: netip.MustParseAddrPort("127.0.0.1:8080"),
		Rule:    &packet.Rule{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, Timestamp: true, SACKPerm: true}})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			srv.Restart() // the Server logs how it went
		}
	}()
	if err := srv.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
