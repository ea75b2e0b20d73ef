#!/usr/bin/env bash
# Publishes every complinist-<version>.tar.gz in DIR to this GitLab project's generic package
# registry as package `complinist`, version <version>: the artifact and a SHA256SUMS holding its
# sha256. Run by the build job; authenticates with the job's CI_JOB_TOKEN, sent as a header on
# stdin (never in a URL or on a command line).
#
# A published version never changes: when the registry already has that version's SHA256SUMS,
# an identical one skips the upload and a different one fails the job (build a new version).
# Prints, per version, the command that writes it into a stack file.
set -euo pipefail

dir=${1:?usage: publish-artifacts.sh DIR}
: "${CI_API_V4_URL:?CI_API_V4_URL is not set (run in a GitLab job)}"
: "${CI_PROJECT_ID:?CI_PROJECT_ID is not set (run in a GitLab job)}"
: "${CI_JOB_TOKEN:?CI_JOB_TOKEN is not set (run in a GitLab job)}"
package="$CI_API_V4_URL/projects/$CI_PROJECT_ID/packages/generic/complinist"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# curl reads the header from stdin (-H @-): the token stays out of argv and the job log.
registry() {
    printf 'JOB-TOKEN: %s\n' "$CI_JOB_TOKEN" | curl --silent --show-error --retry 3 -H @- "$@"
}

cd "$dir"
shopt -s nullglob
artifacts=(complinist-*.tar.gz)
if [ ${#artifacts[@]} -eq 0 ]; then
    echo "publish: no complinist-*.tar.gz in $dir" >&2
    exit 1
fi
for file in "${artifacts[@]}"; do
    version=${file#complinist-}
    version=${version%.tar.gz}
    sha256sum "$file" > "$work/SHA256SUMS"
    url="$package/$version"
    status=$(registry --output "$work/published" --write-out '%{http_code}' "$url/SHA256SUMS")
    case "$status" in
        200)
            if cmp -s "$work/SHA256SUMS" "$work/published"; then
                echo "publish: $version is already published with the same sha256"
            else
                echo "publish: $version is already published with a different artifact:" >&2
                echo "  registry: $(cat "$work/published")" >&2
                echo "  built:    $(cat "$work/SHA256SUMS")" >&2
                echo "  a published version never changes: give the new build a new version" >&2
                exit 1
            fi
            ;;
        404)
            registry --fail --output /dev/null --upload-file "$file" "$url/$file"
            registry --fail --output /dev/null --upload-file "$work/SHA256SUMS" "$url/SHA256SUMS"
            echo "publish: $version published: $url/$file"
            ;;
        *)
            echo "publish: cannot check $url/SHA256SUMS: HTTP $status (does the job token have access to the package registry?)" >&2
            exit 1
            ;;
    esac
    echo "  sha256 $(cut -d' ' -f1 "$work/SHA256SUMS")"
    echo "  to deploy it: npm run release -- --stack <env> --version $version --sums-url $url/SHA256SUMS"
done
