# Entry points. `make test` is the command README.md and .ci/run use.
GO ?= go

.PHONY: all build test demo bench parity wasm clean

all: build

build:
	$(GO) build ./...

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

# Kernel synproxy vs synproxy-lite (nfqueue, afpacket) under a trafgen SYN
# flood; writes docs/bench.md and docs/img/bench.png. Needs root. bench/ is a
# module of its own (its plotting library stays out of go.mod).
.PHONY: bench
bench:
	cd bench && $(GO) run . -out ../docs
