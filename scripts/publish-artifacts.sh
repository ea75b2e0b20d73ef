#!/usr/bin/env bash
# Publishes the build job's artifacts in DIR (every complinist-<version>.tar.gz and the SHA256SUMS
# the build job wrote beside them) to this GitLab project's generic package registry as package
# `complinist`, version <version>: the artifact and a SHA256SUMS holding its line. Run by the
# publish job (protected refs, deploy runners); authenticates with the job's CI_JOB_TOKEN, sent as
# a header on stdin (never in a URL or on a command line).
#
# Every sha256 comes from the build job's SHA256SUMS: a file in DIR that does not match it, or is
# not listed, stops the job before anything is uploaded.
# A published version never changes, and the registry is no authority on what a version is: any
# job token (a branch pipeline's too) can upload a package file first. So a file the registry
# already holds is compared, byte for byte, before anything is uploaded: the same bytes skip the
# upload, other bytes fail the job (the artifact and its SHA256SUMS alike; nothing of that version
# is uploaded beside them). Each upload is read back and must be what this job sent.
# Prints, per version, the command that writes it into a stack file, reading the sha256 from the
# build job's artifact (BUILD_JOB_ID, the build job's dotenv report), never from the registry.
set -euo pipefail

dir=${1:?usage: publish-artifacts.sh DIR}
: "${CI_API_V4_URL:?CI_API_V4_URL is not set (run in a GitLab job)}"
: "${CI_PROJECT_ID:?CI_PROJECT_ID is not set (run in a GitLab job)}"
: "${CI_JOB_TOKEN:?CI_JOB_TOKEN is not set (run in a GitLab job)}"
: "${BUILD_JOB_ID:?BUILD_JOB_ID is not set (the build job exports it in its dotenv report build.env: run with needs: [build])}"
package="$CI_API_V4_URL/projects/$CI_PROJECT_ID/packages/generic/complinist"
build_sums="$CI_API_V4_URL/projects/$CI_PROJECT_ID/jobs/$BUILD_JOB_ID/artifacts/.build/artifacts/SHA256SUMS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# curl reads the header from stdin (-H @-): the token stays out of argv and the job log.
registry() {
    printf 'JOB-TOKEN: %s\n' "$CI_JOB_TOKEN" | curl --silent --show-error --retry 3 -H @- "$@"
}

# What the registry holds at URL compared with the local FILE: absent, same or other (its bytes
# left in $work/held). Any other answer than 200 or 404 stops the job.
held() {
    local url=$1 file=$2 status
    rm -f "$work/held"
    status=$(registry --output "$work/held" --write-out '%{http_code}' "$url") || true
    case "$status" in
        404) echo absent ;;
        200) if cmp -s "$file" "$work/held"; then echo same; else echo other; fi ;;
        *)
            echo "publish: cannot check $url: HTTP $status (does the job token have access to the package registry?)" >&2
            return 1
            ;;
    esac
}

# Uploads FILE to URL, then reads it back: the registry must serve exactly these bytes.
upload() {
    local url=$1 file=$2 state
    registry --fail --output /dev/null --upload-file "$file" "$url"
    state=$(held "$url" "$file")
    if [ "$state" != same ]; then
        echo "publish: the registry serves other bytes at $url than this job uploaded (sha256 $(sha256sum <"$work/held" | cut -d' ' -f1)," >&2
        echo "  uploaded $(sha256sum <"$file" | cut -d' ' -f1)): another upload of this version won; find out whose, delete that package version, and run this job again" >&2
        exit 1
    fi
}

cd "$dir"
if [ ! -f SHA256SUMS ]; then
    echo "publish: no SHA256SUMS in $dir (the build job writes it beside the artifacts; publish only what it built)" >&2
    exit 1
fi
# The build job's sums, line by line: '<sha256>  complinist-<version>.tar.gz', the file present and matching.
declare -A want=()
while IFS= read -r line || [ -n "$line" ]; do
    if ! [[ "$line" =~ ^([0-9a-f]{64})\ [\ *](complinist-[0-9A-Za-z][0-9A-Za-z.+_-]*\.tar\.gz)$ ]]; then
        echo "publish: SHA256SUMS in $dir has a line that is not '<sha256>  complinist-<version>.tar.gz': $(printf '%q' "$line")" >&2
        exit 1
    fi
    sha=${BASH_REMATCH[1]}
    file=${BASH_REMATCH[2]}
    if [ ! -f "$file" ] || [ "$(sha256sum <"$file" | cut -d' ' -f1)" != "$sha" ]; then
        echo "publish: $file does not match the build job's SHA256SUMS ($sha); nothing was published" >&2
        exit 1
    fi
    want[$file]=$sha
done <SHA256SUMS
shopt -s nullglob
artifacts=(complinist-*.tar.gz)
if [ ${#artifacts[@]} -eq 0 ]; then
    echo "publish: no complinist-*.tar.gz in $dir" >&2
    exit 1
fi
for file in "${artifacts[@]}"; do
    if [ -z "${want[$file]:-}" ]; then
        echo "publish: $file is not in the build job's SHA256SUMS; nothing was published" >&2
        exit 1
    fi
done

for file in "${artifacts[@]}"; do
    version=${file#complinist-}
    version=${version%.tar.gz}
    printf '%s  %s\n' "${want[$file]}" "$file" >"$work/SHA256SUMS"
    url="$package/$version"
    artifact=$(held "$url/$file" "$file")
    if [ "$artifact" = other ]; then
        echo "publish: $version is already published with other bytes: $url/$file has sha256 $(sha256sum <"$work/held" | cut -d' ' -f1), the build job's SHA256SUMS says ${want[$file]}" >&2
        echo "  a published version never changes: give the new build a new version (if no protected pipeline published it, a job token did: delete that package version)" >&2
        exit 1
    fi
    sums=$(held "$url/SHA256SUMS" "$work/SHA256SUMS")
    if [ "$sums" = other ]; then
        echo "publish: $version is already published with other bytes: $url/SHA256SUMS holds '$(head -c 200 "$work/held" | tr -cd '[:print:]')', the build job's SHA256SUMS says '$(cat "$work/SHA256SUMS")'" >&2
        echo "  a published version never changes: give the new build a new version (if no protected pipeline published it, a job token did: delete that package version)" >&2
        exit 1
    fi
    if [ "$artifact" = same ] && [ "$sums" = same ]; then
        echo "publish: $version is already published with the same sha256"
    else
        # The artifact before its SHA256SUMS: a SHA256SUMS in the registry always has its artifact.
        if [ "$artifact" = absent ]; then upload "$url/$file" "$file"; fi
        if [ "$sums" = absent ]; then upload "$url/SHA256SUMS" "$work/SHA256SUMS"; fi
        echo "publish: $version published: $url/$file"
    fi
    echo "  sha256 ${want[$file]}"
    echo "  to deploy it: npm run release -- --stack <env> --version $version --sums-url $build_sums --base-url $package"
done
