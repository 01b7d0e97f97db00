package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"

	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
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
