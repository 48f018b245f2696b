#!/usr/bin/env bash
# Fetch and compile what the Go and Java clients need, without running their tests (no server):
# Go modules and the build cache, Maven's artifacts and the Java stubs generated from proto/.
# .ci/run starts it beside pip; the client suites in scripts/test then only compile their tests.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
rc=0
(cd "$ROOT/clients/go" && GOFLAGS=-buildvcs=false go build ./... && go vet ./...) || rc=1
(cd "$ROOT/clients/java" && mvn -B -q --no-transfer-progress test-compile) || rc=1
exit "$rc"
