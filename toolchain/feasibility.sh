#!/usr/bin/env bash
# Can the real Pulumi toolchain be built here? Resolves, through the Go module proxy this
# machine is configured with, every module `npm run toolchain` would build from, and prints
# per module the version taken or the registry's refusal (its exact words). Nothing is built.
#
#   bash toolchain/feasibility.sh            exit 0: every module resolved; 1: at least one refused
#
# The pins are read from toolchain/pins.env. The Node.js language host has no tags of its own:
# its version is the pseudo-version of the commit the CLI's tag points to
# (v3.0.0-<commit time>-<12-hex commit>), which the proxy names only when asked for that exact
# version or for the commit; set LANGUAGE_HOST_VERSION to try a pseudo-version found elsewhere.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091 # pins.env: plain KEY=value lines
. "${here}/pins.env"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
# A throwaway module, so resolution never edits a go.mod of this repo.
(cd "${work}" && go mod init feasibility >/dev/null 2>&1)

refused=0
line() { printf '%-62s %s\n' "$1" "$2"; }

# The first line of the proxy's answer, without go's own prefix: the refusal as the registry worded it.
reason() { grep -v '^\s*$' | sed -n '1,2p' | sed -e 's/^go: //' -e 's/^[[:space:]]*//' | paste -sd ' ' -; }

# resolve MODULE VERSION: downloads the module's zip (what a build needs, not only its .info).
resolve() {
    local module="$1" version="$2" out
    if out="$(cd "${work}" && go mod download "${module}@${version}" 2>&1)"; then
        line "${module}" "${version} (taken)"
    else
        refused=1
        line "${module}" "${version} REFUSED: $(reason <<<"${out}")"
    fi
}

# versions MODULE: what the proxy lists for it (or its refusal).
versions() {
    local module="$1" out
    if out="$(cd "${work}" && go list -m -versions "${module}" 2>&1)"; then
        line "${module}" "lists: ${out#"${module}"}"
    else
        line "${module}" "lists nothing: $(reason <<<"${out}")"
    fi
}

echo "Go: $(go version)"
echo "GOPROXY: $(go env GOPROXY)"
echo
echo "== the CLI (pkg) and the SDK it is built with (same version)"
resolve github.com/pulumi/pulumi/pkg/v3 "${PULUMI_VERSION}"
resolve github.com/pulumi/pulumi/sdk/v3 "${PULUMI_VERSION}"

echo
echo "== the Node.js language host (untagged: the pseudo-version of the ${PULUMI_VERSION} tag's commit)"
versions "${LANGUAGE_HOST_MODULE}"
if [ -n "${LANGUAGE_HOST_VERSION:-}" ]; then
    resolve "${LANGUAGE_HOST_MODULE}" "${LANGUAGE_HOST_VERSION}"
else
    # Without the tag's commit hash the only queries left are "latest" and the branch.
    for query in latest master; do
        resolve "${LANGUAGE_HOST_MODULE}" "${query}"
    done
fi

echo
echo "== the bridged providers (versions of the npm SDKs in package-lock.json)"
versions "${RANDOM_PROVIDER_MODULE}"
resolve "${RANDOM_PROVIDER_MODULE}" "${RANDOM_PROVIDER_VERSION}"
versions "${DOCKER_PROVIDER_MODULE}"
resolve "${DOCKER_PROVIDER_MODULE}" "${DOCKER_PROVIDER_VERSION}"
versions github.com/pulumi/pulumi-terraform-bridge/v3

echo
if ((refused)); then
    echo "feasibility: at least one module the toolchain needs is refused by the proxy (above)"
    exit 1
fi
echo "feasibility: every module resolved"
