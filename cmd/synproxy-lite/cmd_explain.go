package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/synproxy-lite/synproxy-lite/wasm/site"
)

func init() {
	register("explain", "serve the browser explainer of the SYN-cookie handshake (or export it)", runExplain)
}

const explainUsage = `usage: synproxy-lite explain [--listen HOST:PORT]
       synproxy-lite explain --export DIR

Serves the explainer page (on 127.0.0.1:8088 by default), or writes it to
DIR for any static file server. The page runs the cookie package compiled to WebAssembly; it makes no request
beyond its own files. An exported copy must be served over HTTP (not opened as
a file), ideally with explain.wasm as application/wasm.
`

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("explain", explainUsage, stdout)
	listen := fs.String("listen", "127.0.0.1:8088", "`HOST:PORT` to serve the page on")
	export := fs.String("export", "", "write the site to `DIR` instead of serving it")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "synproxy-lite explain: %v\n", err)
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "synproxy-lite explain: unexpected argument %q (explain takes flags only: --listen HOST:PORT or --export DIR)\n", fs.Arg(0))
		return exitUsage
	}
	if *export != "" {
		if err := site.Export(*export); err != nil {
			fmt.Fprintf(stderr, "synproxy-lite explain: --export: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "explainer written to %s; serve it with any static file server\n", *export)
		return exitOK
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite explain: --listen: %v\n", err)
		return exitFailure
	}
	return serveExplain(ctx, ln, stdout, stderr)
}

// serveExplain serves the page on ln until ctx ends.
func serveExplain(ctx context.Context, ln net.Listener, stdout, stderr io.Writer) int {
	srv := &http.Server{Handler: site.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "explainer on http://%s/ (Ctrl-C to stop)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-errc
		return exitOK
	case err := <-errc:
		fmt.Fprintf(stderr, "synproxy-lite explain: %v\n", err)
		return exitFailure
	}
}
