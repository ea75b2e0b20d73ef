#!/usr/bin/env bash
# Bring this machine to the point where integration tests can start target hosts:
# a running Docker engine and the test-host image. Safe to run any number of times.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dockerd_log="${DOCKERD_LOG:-/tmp/dockerd.log}"

# Tests generate their SSH key pair with ssh-keygen; CI images may only carry the server.
if ! command -v ssh-keygen >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends openssh-client
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

bash "${repo_root}/scripts/build-test-image.sh"
