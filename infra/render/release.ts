import * as path from "path";
import { HostLayout, releaseDir } from "./layout";
import { EXIT, MANIFEST } from "./protocol";
import { renderLocked } from "./lock";
import { q } from "./shell";
import { imageDigestParts } from "./image";

/** Host scripts of a release directory: probe, install, delete. */

/**
 * Shell lines: for each link that can keep a release (`current` and every instance link),
 * resolved with realpath, run `then` (with `$used` set) when it names `$dir`. An absolute or
 * trailing-slash link written by hand counts too.
 */
function whenInUse(l: HostLayout, then: string): string[] {
    return [
        `for used in ${q(l.current)} ${q(l.instancesDir)}/*; do`,
        `  if [ -e "$used" ] && [ "$(realpath -e "$used" 2>/dev/null || true)" = "$(realpath -e "$dir")" ]; then ${then}; fi`,
        `done`,
    ];
}

/**
 * Shell lines: the complete release in `$tmp` renamed to `$dir`. A directory already at
 * `$dir` is a leftover the caller found incomplete: it is replaced, unless something uses it,
 * then `refusal` goes to stderr and the script exits 1.
 */
function moveIntoPlace(l: HostLayout, refusal: string): string[] {
    return [`if [ -e "$dir" ]; then`, ...whenInUse(l, `echo "${refusal}" >&2; exit 1`).map((line) => `  ${line}`), `  rm -rf "$dir"`, `fi`, `mv -T "$tmp" "$dir"`];
}

/**
 * Shell lines: `printf FORMAT ARGS` into a file root creates fresh outside the extracted tree
 * (mktemp: O_EXCL, never an existing path), renamed to `$tmp/<MANIFEST>`. rename(2) replaces a
 * name, never follows it; the caller has made sure nothing is there. `$manifest` is in the trap.
 */
function writeManifest(l: HostLayout, version: string, format: string, args: string): string[] {
    return [
        `manifest=$(mktemp ${q(path.posix.join(l.releasesDir, `.tmp-manifest-${version}.`))}"$$.XXXXXX")`,
        `printf ${q(format)} ${args} >"$manifest"`,
        `chmod 0644 "$manifest"`,
        `mv -T "$manifest" "$tmp/${MANIFEST}"`,
    ];
}

/** Reports whether `releases/<v>` is complete (its manifest exists) and with which sha256. */
export function renderReleaseProbe(l: HostLayout, version: string): string {
    const manifest = path.posix.join(releaseDir(l, version), MANIFEST);
    return [
        `manifest=${q(manifest)}`,
        // Never through a link: only a manifest root wrote itself (a regular file) counts.
        `if [ -f "$manifest" ] && [ ! -L "$manifest" ]; then`,
        `  echo "complete=true"`,
        `  sed -n 's/^sha256=/sha256=/p; s/^installedAt=/installedAt=/p' "$manifest"`,
        `else`,
        `  echo "complete=false"`,
        `fi`,
        "",
    ].join("\n");
}

export interface ReleaseInstall {
    readonly version: string;
    readonly sha256: string;
    /** Where the artifact already is on the host (uploaded), or a URL the host downloads. */
    readonly source: { readonly uploaded: string } | { readonly url: string };
    /**
     * The origins releaseAuth is pinned to (`releaseAuth.origins`) when stdin carries its header
     * line (never in argv or the URL); empty: no header. See releaseAuthGoesTo.
     */
    readonly authOrigins: ReadonlyArray<string>;
    /** Who installs (the lock's owner line). */
    readonly who: string;
    readonly service: string;
    /** The commit that first shipped this release, kept in its manifest: a later rollback to it reports this commit. */
    readonly commit: string;
}

/**
 * Whether releaseAuth goes with the download of `url`: only when its origin (WHATWG `URL.origin`:
 * scheme, lowercase host, port) is one the header is pinned to. The schema refuses a release URL
 * outside them already; this holds where the schema was bypassed. The provider feeds the header
 * on stdin under the same test, so it never reaches a host for another origin either.
 */
export function releaseAuthGoesTo(url: string, origins: ReadonlyArray<string>): boolean {
    try {
        return origins.includes(new URL(url).origin);
    } catch {
        return false;
    }
}

/**
 * Shell lines: the download of `url` into `$artifact.part`. releaseAuth (the header on stdin)
 * goes to the configured URL only, and only when its origin is pinned (releaseAuthGoesTo): that
 * request follows no redirect. A redirect — registries send every download to object storage —
 * is followed without the header and only to https (every further hop too, at most 5): `curl -L`
 * would resend the header wherever a redirect names, and `--proto` checks only the first URL.
 * `--globoff` on both: a URL, or a Location the registry sends, is one literal URL; curl would
 * otherwise expand `[1-3]` and `{a,b}` into requests nobody configured.
 */
function renderDownload(url: string, authOrigins: ReadonlyArray<string>): string[] {
    const auth = releaseAuthGoesTo(url, authOrigins);
    return [
        `hop=$(curl -sS --globoff --max-time 600 --proto =http,https ${auth ? "-H @- " : ""}-o "$artifact.part" -w '%{http_code} %{redirect_url}' ${q(url)}${auth ? "" : " </dev/null"})`,
        `code=\${hop%% *}; next=\${hop#* }`,
        `case "$code" in`,
        `  2??) ;;`,
        `  3??)`,
        `    case "$next" in`,
        `      https://*) ;;`,
        `      "") echo "release $version: the download answered HTTP $code without a Location: nothing to download" >&2; exit 1 ;;`,
        // What a registry sends is data: only its origin is shown, cut to one printable line.
        `      *) echo "release $version refused: the download redirects to $(one_line "$(printf '%s' "$next" | sed -n 's#^\\([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*\\).*#\\1#p')" 200), which is not https: a redirect is followed only to https, and never with releaseAuth" >&2; exit 1 ;;`,
        `    esac`,
        `    curl -fsS --globoff --location --max-redirs 5 --max-time 600 --proto =https --proto-redir =https -o "$artifact.part" "$next" </dev/null`,
        `    ;;`,
        `  *) echo "release $version: the download answered HTTP $code" >&2; exit 22 ;;`,
        `esac`,
    ];
}

/**
 * Under the host lock: take the artifact (an upload is renamed to this invocation's temp
 * name, a download lands in one), verify, extract into a temporary directory, write the
 * manifest, then rename into `releases/<v>`: a release directory exists only when complete.
 * The trap, set before the lock is even waited for, removes the temp dir and the artifact
 * on any exit, a refused lock included; a kill that skips the trap leaves only temp names,
 * which the next locked operation removes.
 *
 * Every path in the artifact is data: root never writes through, follows or chmods one
 * (host layout, "Untrusted input rule"). The tree is extracted into a directory only root can
 * enter until it is checked; an artifact that ships the manifest's name, or anything but
 * files, directories and links (a device node, a FIFO, a socket), is refused whole.
 */
export function renderReleaseInstall(l: HostLayout, r: ReleaseInstall): string {
    const dir = releaseDir(l, r.version);
    const temp = (prefix: string) => `${q(path.posix.join(l.releasesDir, `${prefix}-${r.version}`))}.$$`;
    const s = r.source;
    const refuse = (why: string) => `  echo "release $version refused: its artifact ${why}; nothing was installed" >&2; exit 1`;
    return [
        `version=${q(r.version)}; expected=${q(r.sha256)}`,
        `dir=${q(dir)}; tmp=${temp(".tmp")}; artifact=${temp("uploaded" in s ? ".tmp-artifact" : ".download")}.tar.gz; manifest=""`,
        ...("uploaded" in s
            ? [`upload=${q(s.uploaded)}`, `trap 'rm -rf "$tmp" "$artifact" "$upload" "$manifest"' EXIT`]
            : [`trap 'rm -rf "$tmp" "$artifact" "$artifact.part" "$manifest"' EXIT`]),
        // Paused with the upload arrived and the lock held, before the install takes the upload.
        renderLocked(l, r.service, r.who, "upload"),
        `mkdir -p ${q(l.releasesDir)} ${q(l.sharedDir)}`,
        `if [ -f "$dir/${MANIFEST}" ] && [ ! -L "$dir/${MANIFEST}" ] && grep -qx "sha256=$expected" "$dir/${MANIFEST}"; then echo "installed=already"; exit 0; fi`,
        ...("uploaded" in s ? [`mv -f "$upload" "$artifact"`] : [...renderDownload(s.url, r.authOrigins), `mv -f "$artifact.part" "$artifact"`]),
        `actual=$(sha256sum "$artifact" | cut -d' ' -f1)`,
        `if [ "$actual" != "$expected" ]; then`,
        `  echo "checksum mismatch for release $version: expected sha256 $expected, got $actual" >&2`,
        `  exit ${EXIT.checksumMismatch}`,
        `fi`,
        // A fresh directory (no -p) only root can enter: the service user never sees the tree
        // before it is checked.
        `mkdir -m 0700 "$tmp"`,
        `tar -xzf "$artifact" -C "$tmp" --no-same-owner --no-same-permissions`,
        `pause_point extract`,
        `if [ -e "$tmp/${MANIFEST}" ] || [ -L "$tmp/${MANIFEST}" ]; then`,
        refuse(`ships ${MANIFEST} (a $(stat -c %F "$tmp/${MANIFEST}")), the name of the manifest only the install writes`),
        `fi`,
        `odd=$(find -P "$tmp" ! -type f ! -type d ! -type l -printf '%P (type %y)' -quit)`,
        `if [ -n "$odd" ]; then`,
        refuse(`ships other than files, directories and links: $(one_line "$odd" 300)`),
        `fi`,
        // An artifact may ship its own shared/ (rm -rf removes a link, never follows it): the
        // persistent one replaces it, never lands inside it.
        `rm -rf "$tmp/shared"`,
        `ln -sT ../../shared "$tmp/shared"`,
        ...writeManifest(l, r.version, "version=%s\\nsha256=%s\\ninstalledAt=%s\\ncommit=%s\\n", `"$version" "$expected" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${q(r.commit)}`),
        // chmod -R never follows a link it meets (coreutils), and the top is root's own $tmp.
        `chmod -R u+rwX,go+rX,go-w "$tmp"`,
        // A directory without a manifest is a leftover of an interrupted install: never live (its
        // instance could not have passed a gate), so it is replaced. A complete one is never touched.
        ...moveIntoPlace(l, "release $version is in use ($used) but incomplete: refusing to replace it"),
        `step "install release $version: verified sha256 $expected, extracted"`,
        `echo "installed=now"`,
        `sed -n 's/^installedAt=/installedAt=/p' "$dir/${MANIFEST}"`,
        "",
    ].join("\n");
}

/**
 * Under the host lock: remove a release unless it is live, the warm standby or linked by
 * `current` — each resolved with realpath, so an absolute or trailing-slash link written by
 * hand protects its release too. A kept one is reported. The directory is first renamed to
 * a temp name, so a delete killed half-way never leaves a release that still has its
 * manifest (and looks complete) with files missing; the next locked operation removes it.
 */
export function renderReleaseDelete(l: HostLayout, version: string, service: string, who: string): string {
    return [
        renderLocked(l, service, who, false),
        `dir=${q(releaseDir(l, version))}; doomed=${q(path.posix.join(l.releasesDir, `.tmp-delete-${version}`))}.$$`,
        `[ -e "$dir" ] || { echo "deleted=true"; exit 0; }`,
        ...whenInUse(l, `echo "deleted=kept-in-use"; echo "usedBy=$used"; exit 0`),
        `mv -T "$dir" "$doomed"`,
        `pause_point retention`,
        `rm -rf "$doomed"`,
        `step "retention: deleted $dir"`,
        `echo "deleted=true"`,
        "",
    ].join("\n");
}

export interface ImageReleaseInstall {
    readonly version: string;
    /** The image reference in config, pinned by digest: `name[:tag]@sha256:…` (the schema refuses a tag alone in container mode). */
    readonly image: string;
    readonly who: string;
    readonly service: string;
    readonly commit: string;
}

/**
 * Container mode's release: under the host lock, resolve the digest reference on the host's
 * engine to its image ID (pulled by digest only when the engine lacks it: the engine verifies
 * a pulled manifest against the digest) and check that the engine's image for that reference
 * carries exactly that repo digest, else refuse with nothing installed (an engine that resolves
 * `name@sha256:X` from an image ID or anything else is not trusted). Then write a release
 * directory whose manifest pins the ID: `sha256=` the ID's digest (the release's identity, as
 * an artifact's sha256 is in release mode), `image=` the ID the container runs, `digest=` and
 * `ref=`. Written to a temp directory and renamed, like an artifact's; the image itself is never
 * removed (retention drops only the directory: prune by hand with `docker image prune`).
 * A complete release whose pinned image is gone from the engine is resolved again. A release
 * installed before digests were required (its manifest has a tag `ref=`) whose image ID is the
 * one the digest resolves to gets the new `ref=`/`digest=` in place: the same content, now pinned.
 */
export function renderImageReleaseInstall(l: HostLayout, r: ImageReleaseInstall): string {
    const dir = releaseDir(l, r.version);
    const { repo, digest } = imageDigestParts(r.image);
    if (digest === undefined) throw new Error(`release ${r.version}: image ${r.image} is not pinned by digest`);
    const manifest = (installedAt: string, commit: string) =>
        `printf 'version=%s\\nsha256=%s\\nimage=%s\\ndigest=%s\\nref=%s\\ninstalledAt=%s\\ncommit=%s\\n' "$version" "\${id#sha256:}" "$id" "$repo@$digest" "$ref" ${installedAt} ${commit}`;
    const now = `"$(date -u +%Y-%m-%dT%H:%M:%SZ)"`;
    return [
        `version=${q(r.version)}; ref=${q(r.image)}; repo=${q(repo)}; digest=${q(digest)}`,
        `dir=${q(dir)}; tmp=${q(path.posix.join(l.releasesDir, `.tmp-${r.version}`))}.$$`,
        `trap 'rm -rf "$tmp" "$dir/${MANIFEST}.tmp.$$"' EXIT`,
        renderLocked(l, r.service, r.who, "upload"),
        `mkdir -p ${q(l.releasesDir)} ${q(l.sharedDir)}`,
        `if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then echo "container mode needs a running Docker engine on this host (docker info failed)" >&2; exit 1; fi`,
        `pinned=$(sed -n 's/^image=//p' "$dir/${MANIFEST}" 2>/dev/null || true)`,
        `if [ -f "$dir/${MANIFEST}" ] && grep -qxF "ref=$ref" "$dir/${MANIFEST}" && [ -n "$pinned" ] && docker image inspect "$pinned" >/dev/null 2>&1; then`,
        `  echo "installed=already"; echo "image=$pinned"; sed -n 's/^installedAt=/installedAt=/p' "$dir/${MANIFEST}"; exit 0`,
        `fi`,
        `if ! id=$(docker image inspect --format '{{.Id}}' "$repo@$digest" 2>/dev/null); then`,
        `  if ! out=$(docker pull --quiet "$repo@$digest" 2>&1); then`,
        `    echo "image $ref is not on this host and docker pull of $repo@$digest failed ($(printf '%s' "$out" | tail -n 1 | cut -c1-300)); push it to its registry, or load it there and push it, so the engine knows it by that digest. Nothing was installed." >&2`,
        `    exit 1`,
        `  fi`,
        `  id=$(docker image inspect --format '{{.Id}}' "$repo@$digest")`,
        `fi`,
        `case "$id" in sha256:[0-9a-f]*) ;; *) echo "image $ref resolved to an unexpected ID '$id'. Nothing was installed." >&2; exit 1 ;; esac`,
        // The reference alone proves nothing: the image must carry the repo digest itself.
        `carried=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$id" 2>/dev/null || true)`,
        `if ! printf '%s\\n' "$carried" | grep -qxF "$repo@$digest"; then`,
        `  echo "image $ref: the engine's image for it ($id) does not carry the repo digest $repo@$digest (its repo digests: $(printf '%s' "$carried" | tr '\\n' ' ' | cut -c1-400)); refusing it. Pull it by digest from its registry (docker pull $repo@$digest). Nothing was installed." >&2`,
        `  exit 1`,
        `fi`,
        `if [ -f "$dir/${MANIFEST}" ] && [ "$pinned" = "$id" ]; then`,
        // The same image: only ref= and digest= change; when and by which commit it was installed stay.
        `  ${manifest(`"$(sed -n 's/^installedAt=//p' "$dir/${MANIFEST}")"`, `"$(sed -n 's/^commit=//p' "$dir/${MANIFEST}")"`)} > "$dir/${MANIFEST}.tmp.$$"`,
        `  chmod 0644 "$dir/${MANIFEST}.tmp.$$"; mv -f "$dir/${MANIFEST}.tmp.$$" "$dir/${MANIFEST}"`,
        `  step "release $version: image $id now pinned by digest $repo@$digest"`,
        `  echo "installed=now"; echo "image=$id"; sed -n 's/^installedAt=/installedAt=/p' "$dir/${MANIFEST}"; exit 0`,
        `fi`,
        `mkdir -p "$tmp"`,
        `${manifest(now, q(r.commit))} > "$tmp/${MANIFEST}"`,
        `chmod 0755 "$tmp"; chmod 0644 "$tmp/${MANIFEST}"`,
        ...moveIntoPlace(l, "release $version is in use ($used) and pins image ${pinned:-none}, not $id that $repo@$digest names: a release never changes: publish a new version (or load the image again if it was removed)"),
        `step "install release $version: image $ref pinned as $id"`,
        `echo "installed=now"; echo "image=$id"`,
        `sed -n 's/^installedAt=/installedAt=/p' "$dir/${MANIFEST}"`,
        "",
    ].join("\n");
}

/** Reports whether `releases/<v>` pins an image and whether the engine still has it. */
export function renderImageReleaseProbe(l: HostLayout, version: string): string {
    const manifest = path.posix.join(releaseDir(l, version), MANIFEST);
    return [
        `manifest=${q(manifest)}`,
        `image=$(sed -n 's/^image=//p' "$manifest" 2>/dev/null || true)`,
        `echo "image=$image"`,
        `sed -n 's/^ref=/ref=/p' "$manifest" 2>/dev/null || true`,
        `if [ -n "$image" ] && docker image inspect "$image" >/dev/null 2>&1; then echo "present=true"; else echo "present=false"; fi`,
        "",
    ].join("\n");
}
