# Entry points. `make test` is the command README.md and .ci/run use.
GO ?= go

.PHONY: all build install package test demo bench parity wasm clean

all: build

# The binary (BIN, bin/synproxy-lite by default), with the build
# information `synproxy-lite version` prints (built in a git clone, the VCS
# revision, its time and whether the tree was modified; a tagged commit
# gives its version).
BIN ?= bin/synproxy-lite
build:
	$(GO) build -trimpath -o $(BIN) ./cmd/synproxy-lite

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary in $(PREFIX)/bin,
# the systemd unit (its paths rewritten for PREFIX) in /lib/systemd/system,
# the docs in $(PREFIX)/share/doc/synproxy-lite, the example configuration
# in /etc/synproxy-lite unless one is there. The unit runs as the system
# user synproxy-lite, which the .deb creates (make package) and make
# install does not.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
DOCDIR = $(PREFIX)/share/doc/synproxy-lite
UNITDIR = /lib/systemd/system
SYSCONFDIR ?= /etc
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/img
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/synproxy-lite
	sed -e 's|/usr/bin/synproxy-lite|$(BINDIR)/synproxy-lite|g' \
	    -e 's|file:///usr/share/doc/synproxy-lite/|file://$(DOCDIR)/|g' \
	    packaging/synproxy-lite.service > $(DESTDIR)$(UNITDIR)/synproxy-lite.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/synproxy-lite.service
	install -m 0644 README.md LICENSE docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 docs/img/*.png $(DESTDIR)$(DOCDIR)/img/
	install -d $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/synproxy-lite
	install -m 0644 docs/synproxy-lite.toml $(DESTDIR)$(DOCDIR)/examples/
	[ -e $(DESTDIR)$(SYSCONFDIR)/synproxy-lite/synproxy-lite.toml ] || \
	    install -m 0644 docs/synproxy-lite.toml $(DESTDIR)$(SYSCONFDIR)/synproxy-lite/

# make package [PKGDIR=dist] [VERSION=v1.2.3]: the Debian package (the
# binary, the unit, the example config as a conffile, the docs; postinst
# creates the system user), built by goreleaser's nfpm at a pinned version
# run with `go run`, so it stays out of go.mod. VERSION defaults to the
# last v* tag (git describe), or 0.0.0 with the commit.
NFPM_VERSION = v2.48.0
NFPM ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
PKGDIR ?= dist
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || \
	echo v0.0.0-git.$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
package: build
	install -d $(PKGDIR)
	BIN=$(BIN) VERSION=$(VERSION) GOARCH=$$($(GO) env GOARCH) \
	    $(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(PKGDIR)/

test:
	./scripts/test.sh

demo: build
	$(GO) run ./cmd/synproxy-lite demo

clean:
	rm -rf bin dist

# Kernel parity harness (root, qemu, apt): boots Debian's 6.1 and 6.12 kernels
# and checks PARITY_SAMPLES SYN-ACKs each against package cookie.
# PARITY_CORPUS=fuzz/testdata/parity rewrites the committed corpora.
PARITY_SAMPLES ?= 100000
PARITY_CORPUS ?=
parity:
	$(GO) run ./fuzz/cmd/parity -samples $(PARITY_SAMPLES) $(if $(PARITY_CORPUS),-corpus $(PARITY_CORPUS))

# The explainer's WebAssembly binary (committed; rebuild after changing cookie/ or wasm/),
# then its size budget (2.5 MB raw or 700 KB gzip -9) and the packages kept out of it.
wasm:
	$(GO) generate ./wasm/site
	$(GO) test -count=1 -run 'TestWasmBudget|TestWasmDeps|TestWasmNotStale' ./wasm/site

# An XDP_TX ceiling and kernel synproxy vs synproxy-lite (nfqueue, afpacket,
# afxdp) under a trafgen SYN
# flood, then a known client under a flood from many sources, with and without
# proven clients first; writes docs/bench.md, docs/bench-known.md and
# docs/img/bench.png. Needs root. bench/ is a
# module of its own (its plotting library stays out of go.mod).
.PHONY: bench
bench:
	cd bench && $(GO) run . -out ../docs
