#!/usr/bin/env bash
# CI entry point of the Java client: builds (stubs generated from ../../proto) and runs the
# JUnit tests against a live server. With OVMS_GRPC_ADDR=host:port the tests use that server;
# without it they start `ovms-grpc --demo` themselves (it must be on PATH).
# Exits non-zero when a test fails; surefire prints "Tests run: N, Failures: ..." either way.
set -euo pipefail
cd "$(dirname "$0")"
# Not -q: -q would also hide surefire's per-class and total "Tests run:" lines.
exec mvn -B --no-transfer-progress test "$@"
