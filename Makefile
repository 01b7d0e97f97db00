# Entry points. `make test` is the command README.md and .ci/run use.
GO ?= go

.PHONY: all build install test demo bench parity wasm clean

all: build

# The binary, with the build information `synproxy-lite version` prints
# (built in a git clone, the VCS revision, its time and whether the tree
# was modified; a tagged commit gives its version).
build:
	$(GO) build -trimpath -o bin/synproxy-lite ./cmd/synproxy-lite

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary in $(PREFIX)/bin,
# the systemd unit (its paths rewritten for PREFIX) in /lib/systemd/system,
# the docs in $(PREFIX)/share/doc/synproxy-lite.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
DOCDIR = $(PREFIX)/share/doc/synproxy-lite
UNITDIR = /lib/systemd/system
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/img
	install -m 0755 bin/synproxy-lite $(DESTDIR)$(BINDIR)/synproxy-lite
	sed -e 's|/usr/local/bin/synproxy-lite|$(BINDIR)/synproxy-lite|g' \
	    -e 's|file:///usr/share/doc/synproxy-lite/|file://$(DOCDIR)/|g' \
	    docs/synproxy-lite.service > $(DESTDIR)$(UNITDIR)/synproxy-lite.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/synproxy-lite.service
	install -m 0644 README.md LICENSE docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 docs/img/*.png $(DESTDIR)$(DOCDIR)/img/

test:
	./scripts/test.sh

demo: build
	$(GO) run ./cmd/synproxy-lite demo

clean:
	rm -rf bin

# Kernel parity harness (root, qemu, apt): boots Debian's 6.1 and 6.12 kernels
# and checks PARITY_SAMPLES SYN-ACKs each against package cookie.
# PARITY_CORPUS=fuzz/testdata/parity rewrites the committed corpora.
PARITY_SAMPLES ?= 100000
PARITY_CORPUS ?=
parity:
	$(GO) run ./fuzz/cmd/parity -samples $(PARITY_SAMPLES) $(if $(PARITY_CORPUS),-corpus $(PARITY_CORPUS))

# The explainer's WebAssembly binary (committed; rebuild after changing cookie/ or wasm/).
wasm:
	$(GO) generate ./wasm/site

# An XDP_TX ceiling and kernel synproxy vs synproxy-lite (nfqueue, afpacket,
# afxdp) under a trafgen SYN
# flood; writes docs/bench.md and docs/img/bench.png. Needs root. bench/ is a
# module of its own (its plotting library stays out of go.mod).
.PHONY: bench
bench:
	cd bench && $(GO) run . -out ../docs
