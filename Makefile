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
