#!/usr/bin/env bash
# Regenerate the Go stubs in clients/go/gen/ from the contracts in proto/.
#
#   bash clients/go/generate.sh          rewrite gen/
#   bash clients/go/generate.sh --check  regenerate into a temp dir; exit 1 with
#                                        a diff if the committed gen/ is stale
#
# buf runs from the repository root so the workspace buf.yaml (two module roots:
# proto/ and proto/third_party/) resolves imports exactly as the server's own
# code generation does. Plugins are local binaries installed at pinned versions
# into the git-ignored .tools/bin, so output never depends on a remote registry.
# gen/ is output only: never edit it by hand, change the .proto and rerun this.
set -euo pipefail

BUF_VERSION=1.75.0
# protoc-gen-go is pinned to the google.golang.org/protobuf version in go.mod
# (read below): the generated code must match the runtime it links against.
# protoc-gen-go-grpc is versioned on its own; v1.6.x emits code that needs
# google.golang.org/grpc >= v1.64 (go.mod has v1.84.0).
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$ROOT/.tools/bin
mkdir -p "$BIN"

# Go may not be on PATH in a bare CI environment.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="$PATH:/usr/local/go/bin"
fi

PROTOC_GEN_GO_VERSION=$(cd "$HERE" && go list -m -f '{{.Version}}' google.golang.org/protobuf)

# The version a binary reports, without a leading "v" (protoc-gen-go prints
# "protoc-gen-go v1.36.12", protoc-gen-go-grpc prints "protoc-gen-go-grpc 1.6.2").
installed_version() {
  [[ -x $1 ]] || return 0
  "$1" --version 2>/dev/null | awk '{ sub(/^v/, "", $NF); print $NF }'
}

ensure_plugin() { # binary package version
  local bin=$1 pkg=$2 version=$3
  if [[ $(installed_version "$BIN/$bin") != "${version#v}" ]]; then
    echo "generate: installing $pkg@$version into $BIN" >&2
    GOBIN=$BIN GOTOOLCHAIN=local GOFLAGS=-buildvcs=false go install "$pkg@$version"
  fi
}

ensure_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
ensure_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

# buf comes from scripts/install_tools.sh; without it, the same pinned npm
# package through npx.
if [[ $(installed_version "$BIN/buf") == "$BUF_VERSION" ]]; then
  buf=("$BIN/buf")
else
  buf=(npx --yes "@bufbuild/buf@$BUF_VERSION")
fi

# Generate into a scratch directory in both modes: --check compares it, the
# default mode swaps it in whole, so stubs of a deleted .proto disappear too.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(
  cd "$ROOT"
  PATH="$BIN:$PATH" "${buf[@]}" generate . --template clients/go/buf.gen.yaml --output "$tmp"
)

if $check; then
  if ! diff -ruN "$HERE/gen" "$tmp/gen"; then
    echo "generate: clients/go/gen is stale; run: bash clients/go/generate.sh" >&2
    exit 1
  fi
  echo "generate: clients/go/gen is up to date"
else
  rm -rf "$HERE/gen"
  mv "$tmp/gen" "$HERE/gen"
  echo "generate: wrote $(find "$HERE/gen" -name '*.go' | wc -l) files in clients/go/gen"
fi
