#!/usr/bin/env bash
# Build the docker-in-docker test host: the plain test host (scripts/build-test-image.sh)
# plus Debian's docker.io, with docker.service and containerd.service enabled at boot, and
# Debian's docker-registry (the distribution registry), installed but disabled: tests start
# it on the host's loopback and push images into it, so the host's engine knows them by
# repo digest (dev/images.ts pushImages) — a `docker load`ed image has no RepoDigest.
#
#   scripts/build-docker-host-image.sh [plain-image-tag]   (default: builds/reuses it first)
#
# Built by running the plain image, installing with apt from the sources already in it, and
# `docker commit` — no registry. The tag is the sha256 of this file plus the plain image's
# tag, so an unchanged setup reuses the existing image. Prints the tag (last line of stdout).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script_path="${repo_root}/scripts/build-docker-host-image.sh"
image="complinist-dockerhost"

log() { echo "build-docker-host-image: $*" >&2; }

base="${1:-$(bash "${repo_root}/scripts/build-test-image.sh" | tail -n1)}"
if ! docker image inspect "${base}" >/dev/null 2>&1; then
    log "plain test-host image ${base} is missing: run scripts/build-test-image.sh first"
    exit 1
fi
hash="$( (cat "${script_path}"; echo "${base}") | sha256sum | cut -c1-16)"
tag="${image}:${hash}"

if docker image inspect "${tag}" >/dev/null 2>&1; then
    docker tag "${tag}" "${image}:latest"
    log "image ${tag} already present"
    echo "${tag}"
    exit 0
fi

start=$(date +%s)
builder="complinist-dockerhost-build-$$"
trap 'docker rm -f -v "${builder}" >/dev/null 2>&1 || true' EXIT

# systemd is not running during the build: the maintainer scripts only create the
# enablement links, and nothing is started. DEBIAN_FRONTEND is set inside the command, not
# with -e, so it does not end up in the committed image's ENV.
log "installing docker.io into ${base}"
docker run --name "${builder}" "${base}" bash -euo pipefail -c '
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-o Acquire::Retries=3 -o Dpkg::Use-Pty=0)
    apt-get "${apt_opts[@]}" update -qq
    apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends docker.io docker-registry >/dev/null
    systemctl enable docker.service containerd.service >/dev/null 2>&1
    # Its packaged service would listen on every address, port 5000 (the port of the app proxy).
    systemctl disable docker-registry.service >/dev/null 2>&1
    [[ "$(systemctl is-enabled docker-registry.service 2>/dev/null || true)" == disabled ]] || { echo "docker-registry.service is still enabled" >&2; exit 1; }
    for unit in docker.service containerd.service; do
        [[ "$(systemctl is-enabled "${unit}")" == enabled ]] || { echo "${unit} is not enabled" >&2; exit 1; }
    done
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old
    # Same as the plain image: a fresh machine-id per container.
    : >/etc/machine-id
    rm -f /var/lib/dbus/machine-id
' >&2

# Keep the plain image's config, CMD and ENV (commit would otherwise record the build command).
log "committing ${tag}"
docker commit \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=docker' \
    --message "complinist docker-in-docker test host (${hash}, from ${base})" \
    "${builder}" "${tag}" >/dev/null
docker tag "${tag}" "${image}:latest"
log "built ${tag} in $(($(date +%s) - start)) s"
echo "${tag}"
