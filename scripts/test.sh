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
# emulation for minutes. It runs beside the rest of the suite: no test may
# depend on how much CPU it gets, and this is the load that proves it.
echo "== kernel parity under qemu (in the background)"
parity=$(mktemp)
trap 'rm -f "$log" "$parity"' EXIT
# setsid: its own process group, so that a failure below stops qemu too.
setsid go test -count=1 -timeout 20m -run '^TestKernelParityQemu$' -v ./fuzz/ >"$parity" 2>&1 &
parity_pid=$!

echo "== go test -race"
if ! go test -race -count=1 -parallel 4 -timeout 30m -skip '^TestKernelParityQemu$' ./...; then
	kill -- -"$parity_pid" 2>/dev/null || true
	exit 1
fi

echo "== kernel parity under qemu (its result)"
if ! wait "$parity_pid"; then
	cat "$parity"; exit 1
fi
grep -E '^(---|ok|FAIL)|SKIP|samples|mismatch' "$parity" || true

# The browser tests are a module of their own (chromedp stays out of the
# main module's requirements).
echo "== go test -race (wasm/browsertest)"
(cd wasm/browsertest && go test -race -count=1 -timeout 10m ./...)

# The benchmark's own tests (a nested module): its ceiling program's SYN-ACK
# through BPF_PROG_TEST_RUN and its driver probe; -short leaves out the
# smoke run of a whole bench.
echo "== go test (bench)"
(cd bench && go test -short -count=1 -timeout 5m ./...)
