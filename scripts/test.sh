#!/usr/bin/env bash
# The project's test command: dependencies, formatting, vet, the whole test
# suite with the race detector, and every benchmark run once so none rots.
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

echo "== go test -race"
go test -race -count=1 -timeout 30m ./...

echo "== benchmarks, once each"
go test -run '^$' -bench . -benchtime 1x -count=1 ./... >/dev/null
echo "benchmarks ok"
