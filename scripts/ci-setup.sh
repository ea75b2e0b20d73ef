#!/usr/bin/env bash
# Bring this machine to the point where integration tests can start target hosts:
# a running Docker engine and the test-host images (plain and docker-in-docker). Safe to
# run any number of times.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dockerd_log="${DOCKERD_LOG:-/tmp/dockerd.log}"

# A fresh Debian machine has none of the tools; install them once (as root), from apt's own mirror.
# docker.io: the engine for test hosts; debootstrap: builds their image; systemd: systemd-analyze;
# and the linter for rendered scripts; python3: runs the sample app in unit tests; ssh-keygen: test keys;
# nft: loads the instance firewall in a scratch network namespace; ss: the host program's listener check.
missing=()
for tool in dockerd:docker.io debootstrap:debootstrap systemd-analyze:systemd shellcheck:shellcheck python3:python3 ssh-keygen:openssh-client curl:curl haproxy:haproxy nft:nftables ss:iproute2; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
    echo "ci-setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    echo "ci-setup: starting dockerd (log: ${dockerd_log})"
    # setsid detaches the daemon from this script's process group so CI's cleanup of the
    # setup step does not take the engine down before the tests run.
    setsid dockerd >"${dockerd_log}" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then
            break
        fi
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        echo "ci-setup: dockerd did not become ready within 60 s; last log lines:" >&2
        tail -n 30 "${dockerd_log}" >&2 || true
        exit 1
    fi
fi
echo "ci-setup: docker engine ready ($(docker version --format '{{.Server.Version}}'))"

testhost_tag="$(bash "${repo_root}/scripts/build-test-image.sh" | tail -n1)"
echo "${testhost_tag}"
# The docker-in-docker host for container-mode tests, built from the plain one.
bash "${repo_root}/scripts/build-docker-host-image.sh" "${testhost_tag}"
