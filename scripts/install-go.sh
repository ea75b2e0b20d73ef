#!/usr/bin/env bash
# CI (.gitlab-ci.yml): Go for the jobs that build the host agent or the Pulumi CLI; the node image
# has none. Installs go${GO_VERSION} into /usr/local/go and links go and gofmt into /usr/local/bin;
# does nothing when exactly that version is already on PATH.
# The exact version matters: it is part of the agent's build key (toolchain/agent.ts), so every
# job (a preview and the deploy it approves) builds the same bytes.
#
# The toolchain comes from the Go module proxy as the module golang.org/toolchain (what `go`
# itself downloads for GOTOOLCHAIN), and is refused unless its sha256 is the one pinned below for
# this version and architecture: a compromised proxy, mirror or network path cannot hand CI another
# compiler. Pins for another GO_VERSION: GO_TOOLCHAIN_SHA256=<sha256 of its zip>, checked the same way.
set -euo pipefail

want="go${GO_VERSION:?set GO_VERSION, e.g. 1.26.8}"
if command -v go >/dev/null 2>&1 && [ "$(go env GOVERSION)" = "${want}" ]; then
    echo "install-go: ${want} already on PATH"
    exit 0
fi
arch="$(dpkg --print-architecture)" # amd64 or arm64: Go's names too
case "${want}-${arch}" in
    go1.26.8-amd64) pinned=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7 ;;
    go1.26.8-arm64) pinned=02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99 ;;
    *) pinned="${GO_TOOLCHAIN_SHA256:-}" ;;
esac
if [ -z "${pinned}" ]; then
    echo "install-go: no sha256 pinned for ${want} linux/${arch}: pin it in scripts/install-go.sh or set GO_TOOLCHAIN_SHA256" >&2
    exit 1
fi
module="golang.org/toolchain@v0.0.1-${want}.linux-${arch}"
proxy="${GOPROXY_URL:-https://proxy.golang.org}"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
echo "install-go: ${want} linux/${arch} from ${proxy} (${module})"
curl -fsSL "${proxy}/golang.org/toolchain/@v/v0.0.1-${want}.linux-${arch}.zip" -o "${tmp}/go.zip"
got="$(sha256sum "${tmp}/go.zip" | cut -d' ' -f1)"
if [ "${got}" != "${pinned}" ]; then
    echo "install-go: ${module} has sha256 ${got}, not the pinned ${pinned}: refused, nothing installed" >&2
    exit 1
fi
(cd "${tmp}" && unzip -q go.zip) # unzip keeps the zip's modes: bin/go and the tools stay executable
prefix="${INSTALL_PREFIX:-/usr/local}"
mkdir -p "${prefix}/bin"
rm -rf "${prefix}/go"
mv "${tmp}/${module}" "${prefix}/go"
ln -sf "${prefix}/go/bin/go" "${prefix}/go/bin/gofmt" "${prefix}/bin/"
"${prefix}/go/bin/go" version
