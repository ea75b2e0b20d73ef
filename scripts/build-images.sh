#!/usr/bin/env bash
# Builds the sample app into one image per release, tagged complinist:<version>, for
# container mode — with nothing pulled from any registry:
#
#   scripts/build-images.sh [version ...]        (default: every artifact in .build/artifacts,
#                                                 or in $COMPLINIST_ARTIFACTS_DIR)
#
# Base: the rootfs of the local test-host image (complinist-testhost:latest, Debian bookworm
# with python3; from scripts/build-test-image.sh), flattened once by `docker export | docker
# import` into complinist-base:<id of that image> with a `complinist` user (uid 10001) and
# its log directory. Each release image is that base plus the release artifact itself
# (.build/artifacts/complinist-<v>.tar.gz, the same bytes release mode deploys) unpacked to
# /app, committed with CMD/WORKDIR/USER and labels naming version and artifact
# sha256.
#
# Stable tags: an image whose labels already name the same artifact sha256 and base is left
# alone, so re-running changes no image ID (rollback tests and `keepLocally` see the same
# image). Docker stamps a creation time into every new image, so a build from scratch gets
# new IDs with identical content; the tags and labels are what the stack config relies on.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ARTIFACTS="${COMPLINIST_ARTIFACTS_DIR:-$ROOT/.build/artifacts}"
BASE_SOURCE="${COMPLINIST_IMAGE_BASE:-complinist-testhost:latest}"
REPO="${COMPLINIST_IMAGE_REPO:-complinist}"
APP_USER=complinist
APP_UID=10001

log() { printf 'build-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine (start dockerd, then re-run)"
docker image inspect "$BASE_SOURCE" >/dev/null 2>&1 ||
    die "base image $BASE_SOURCE is missing: run scripts/build-test-image.sh first (nothing is pulled)"

if [ ! -d "$ARTIFACTS" ] || [ -z "$(ls "$ARTIFACTS"/complinist-*.tar.gz 2>/dev/null)" ]; then
    log "no artifacts yet: building them (scripts/build-artifacts.ts)"
    (cd "$ROOT" && npx ts-node --transpile-only scripts/build-artifacts.ts) >&2
fi

cleanup_ids=()
cleanup() {
    for id in "${cleanup_ids[@]}"; do docker rm -f "$id" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# --- base: flattened test-host rootfs + app user, keyed by the source image ID -------------
source_id="$(docker image inspect -f '{{.Id}}' "$BASE_SOURCE")"
short_id="${source_id#sha256:}"
base="$REPO-base:${short_id:0:16}"
if ! docker image inspect "$base" >/dev/null 2>&1; then
    log "creating $base from $BASE_SOURCE"
    cid="$(docker create "$BASE_SOURCE" /bin/sh -euc "
        command -v python3 >/dev/null || { echo 'python3 missing in $BASE_SOURCE' >&2; exit 1; }
        getent passwd $APP_USER >/dev/null || useradd --system --uid $APP_UID --user-group \
            --home-dir /app --no-create-home --shell /usr/sbin/nologin $APP_USER
        mkdir -p /app /var/log/$APP_USER
        chown $APP_USER:$APP_USER /var/log/$APP_USER
        chmod 0750 /var/log/$APP_USER")"
    cleanup_ids+=("$cid")
    docker start -a "$cid" >&2
    docker export "$cid" | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "LABEL complinist.base.source=$source_id" \
        - "$base" >/dev/null
    docker rm -f "$cid" >/dev/null
fi

# --- one image per release -------------------------------------------------------------------
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
    for f in "$ARTIFACTS"/complinist-*.tar.gz; do
        v="${f##*/complinist-}"
        versions+=("${v%.tar.gz}")
    done
fi

for v in "${versions[@]}"; do
    [[ "$v" =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$ ]] || die "not a version: $v"
    artifact="$ARTIFACTS/complinist-$v.tar.gz"
    [ -f "$artifact" ] || die "no artifact for $v: $artifact (run scripts/build-artifacts.ts)"
    sha="$(sha256sum "$artifact" | cut -d' ' -f1)"
    tag="$REPO:$v"
    have="$(docker image inspect -f '{{index .Config.Labels "complinist.artifact.sha256"}} {{index .Config.Labels "complinist.base"}}' "$tag" 2>/dev/null || true)"
    if [ "$have" = "$sha $base" ]; then
        log "$tag up to date ($(docker image inspect -f '{{.Id}}' "$tag"))"
        printf '%s\t%s\t%s\n' "$tag" "$(docker image inspect -f '{{.Id}}' "$tag")" "$sha"
        continue
    fi
    cid="$(docker create "$base" /bin/true)"
    cleanup_ids+=("$cid")
    # The artifact's entries (VERSION MODE bin server.py) land in /app owned by root:
    # the app user can read and run the release but not change it, as in release mode.
    gzip -dc "$artifact" | docker cp - "$cid:/app"
    docker commit \
        --change 'WORKDIR /app' \
        --change "USER $APP_USER" \
        --change 'ENV PORT=5000' \
        --change 'EXPOSE 5000' \
        --change 'CMD ["/app/bin/start"]' \
        --change "LABEL complinist.version=$v complinist.artifact.sha256=$sha complinist.base=$base" \
        "$cid" "$tag" >/dev/null
    docker rm -f "$cid" >/dev/null
    log "built $tag from $(basename "$artifact")"
    printf '%s\t%s\t%s\n' "$tag" "$(docker image inspect -f '{{.Id}}' "$tag")" "$sha"
done
