#!/usr/bin/env bash
# CI entry point for the Go client: vet, then the tests against a live server.
#   bash clients/go/run_tests.sh             starts `ovms-grpc --demo` itself
#   OVMS_GRPC_ADDR=host:port bash clients/go/run_tests.sh   uses that server
# Extra arguments go to `go test` (e.g. -v, -run TestChat).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# Go may not be on PATH in a bare CI environment.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="$PATH:/usr/local/go/bin"
fi

go vet ./...
# -count=1: results depend on the server, never reuse a cached pass.
go test -count=1 "$@" ./...
