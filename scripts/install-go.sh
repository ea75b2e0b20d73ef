#!/usr/bin/env bash
# CI (.gitlab-ci.yml): Go for the jobs that build the host agent or the Pulumi CLI; the node image
# has none. Installs the official release go${GO_VERSION} from go.dev into /usr/local/go and links
# go and gofmt into /usr/local/bin; does nothing when exactly that version is already on PATH.
# The exact version matters: it is part of the agent's build key (toolchain/agent.ts), so every
# job (a preview and the deploy it approves) builds the same bytes.
set -euo pipefail

want="go${GO_VERSION:?set GO_VERSION, e.g. 1.26.8}"
if command -v go >/dev/null 2>&1 && [ "$(go env GOVERSION)" = "${want}" ]; then
    echo "install-go: ${want} already on PATH"
    exit 0
fi
arch="$(dpkg --print-architecture)" # amd64 or arm64: Go's names too
tmp="$(mktemp)"
trap 'rm -f "${tmp}"' EXIT
echo "install-go: ${want} linux/${arch} from https://go.dev/dl/"
curl -fsSL "https://go.dev/dl/${want}.linux-${arch}.tar.gz" -o "${tmp}"
rm -rf /usr/local/go
tar -C /usr/local -xzf "${tmp}"
ln -sf /usr/local/go/bin/go /usr/local/go/bin/gofmt /usr/local/bin/
go version
