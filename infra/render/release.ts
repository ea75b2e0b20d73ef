import * as path from "path";
import { HostLayout, releaseDir } from "./layout";
import { EXIT, MANIFEST } from "./protocol";
import { q } from "./shell";

/** Host scripts of a release directory: probe, install, delete. */

/** Reports whether `releases/<v>` is complete (its manifest exists) and with which sha256. */
export function renderReleaseProbe(l: HostLayout, version: string): string {
    const manifest = path.posix.join(releaseDir(l, version), MANIFEST);
    return [
        `manifest=${q(manifest)}`,
        `if [ -f "$manifest" ]; then`,
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
}

/**
 * Verify, extract into a temporary directory, write the manifest, then rename
 * into `releases/<v>`: a release directory exists only when complete. On any
 * failure the trap removes the temp dir and the artifact: nothing is left behind.
 */
export function renderReleaseInstall(l: HostLayout, r: ReleaseInstall): string {
    const dir = releaseDir(l, r.version);
    const artifact = "uploaded" in r.source ? r.source.uploaded : path.posix.join(l.releasesDir, `.download-${r.version}.tar.gz`);
    return [
        `version=${q(r.version)}; expected=${q(r.sha256)}`,
        `dir=${q(dir)}; artifact=${q(artifact)}; tmp=${q(path.posix.join(l.releasesDir, `.tmp-${r.version}`))}.$$`,
        `trap 'rm -rf "$tmp" "$artifact"' EXIT`,
        `mkdir -p ${q(l.releasesDir)} ${q(l.sharedDir)}`,
        `if [ -f "$dir/${MANIFEST}" ] && grep -qx "sha256=$expected" "$dir/${MANIFEST}"; then echo "installed=already"; exit 0; fi`,
        ...("url" in r.source ? [`curl -fsSL --max-time 600 -o "$artifact" ${q(r.source.url)}`] : []),
        `actual=$(sha256sum "$artifact" | cut -d' ' -f1)`,
        `if [ "$actual" != "$expected" ]; then`,
        `  echo "checksum mismatch for release $version: expected sha256 $expected, got $actual" >&2`,
        `  exit ${EXIT.checksumMismatch}`,
        `fi`,
        `mkdir -p "$tmp"`,
        `tar -xzf "$artifact" -C "$tmp" --no-same-owner --no-same-permissions`,
        `ln -sfn ../../shared "$tmp/shared"`,
        `printf 'version=%s\\nsha256=%s\\ninstalledAt=%s\\n' "$version" "$expected" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$tmp/${MANIFEST}"`,
        `chmod -R u+rwX,go+rX,go-w "$tmp"`,
        // A directory without a manifest is a leftover of an interrupted install; it is never `current`.
        `rm -rf "$dir"`,
        `mv -T "$tmp" "$dir"`,
        `echo "installed=now"`,
        `sed -n 's/^installedAt=/installedAt=/p' "$dir/${MANIFEST}"`,
        "",
    ].join("\n");
}

/** Remove a release unless `current` points to it (then it is kept and reported). */
export function renderReleaseDelete(l: HostLayout, version: string): string {
    return [
        `target=$(readlink ${q(l.current)} 2>/dev/null || true)`,
        `if [ "$target" = ${q(`releases/${version}`)} ]; then echo "deleted=kept-current"; exit 0; fi`,
        `rm -rf ${q(releaseDir(l, version))}`,
        `echo "deleted=true"`,
        "",
    ].join("\n");
}
