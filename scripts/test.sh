#!/usr/bin/env bash
# The project's test command: dependencies, formatting, vet, every benchmark
# run once so none rots, the live kernel parity harness, and the whole test
# suite with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/test-deps.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...
GOOS=js GOARCH=wasm go vet ./cookie/... ./packet/... ./wasm/...
# bench/ is a nested module: ./... above does not reach it.
(cd bench && go vet ./... && go build -o /dev/null ./...)
(cd wasm/browsertest && go vet ./...)

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== benchmarks, once each"
if ! go test -run '^$' -bench . -benchtime 1x -count=1 ./... >"$log" 2>&1; then
	cat "$log"; exit 1
fi
echo "benchmarks ok"

# The live kernel parity harness keeps a core busy with qemu's software
# emulation for minutes; it runs on its own so that the timing-sensitive
# network tests below do not compete with it.
echo "== kernel parity under qemu"
if ! go test -count=1 -timeout 20m -run '^TestKernelParityQemu$' -v ./fuzz/ >"$log" 2>&1; then
	cat "$log"; exit 1
fi
grep -E '^(---|ok|FAIL)|SKIP|samples|mismatch' "$log" || true

echo "== go test -race"
go test -race -count=1 -timeout 30m -skip '^TestKernelParityQemu$' ./...

# The browser tests are a module of their own (chromedp stays out of the
# main module's requirements).
echo "== go test -race (wasm/browsertest)"
(cd wasm/browsertest && go test -race -count=1 -timeout 10m ./...)
