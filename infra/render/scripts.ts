import * as path from "path";
import { HostLayout, releaseDir } from "./layout";
import { q } from "./shell";

/**
 * Pure renderers of every script run on a host. Each value is quoted with q();
 * scripts print `key=value` lines that the providers parse (see parseKeyValues).
 * All of them run under `bash -euo pipefail`.
 */

/** Name of the manifest that marks a release directory complete. */
export const MANIFEST = ".complinist-release";

/** Exit codes the providers turn into operator-facing errors. */
export const EXIT = {
    checksumMismatch: 3,
    incompleteRelease: 4,
    hookFailed: 5,
    healthFailed: 6,
    locked: 75,
} as const;

export function parseKeyValues(stdout: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of stdout.split("\n")) {
        const i = line.indexOf("=");
        if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1);
    }
    return out;
}

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

export interface ServiceFiles {
    readonly service: string;
    readonly user: string;
    readonly unitText: string;
}

/**
 * Create the service user and directories, write the unit and (from stdin, so
 * secrets never appear in a command line) the env file with mode 0600, then
 * daemon-reload and enable. Each file is written to a temp name and renamed.
 */
export function renderServiceApply(l: HostLayout, s: ServiceFiles, systemd: boolean): string {
    const unitB64 = Buffer.from(s.unitText, "utf8").toString("base64");
    // Under a temp root (tests) the user is not created and files keep the caller's owner.
    const owner = systemd ? `-o "$user" -g "$user" ` : "";
    return [
        `user=${q(s.user)}`,
        ...(systemd
            ? [`if ! id -u "$user" >/dev/null 2>&1; then useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user" >/dev/null; fi`]
            : [`: "$user"`]),
        `install -d -m 0755 ${q(l.baseDir)} ${q(l.releasesDir)} ${q(path.posix.dirname(l.unitFile))}`,
        `install -d -m 0750 ${owner}${q(l.sharedDir)} ${q(l.logDir)}`,
        `install -d -m 0700 ${q(l.envDir)}`,
        `touch ${q(l.logFile)} && chmod 0640 ${q(l.logFile)}`,
        ...(systemd ? [`chown "$user:$user" ${q(l.logFile)}`] : []),
        `umask 077`,
        `cat > ${q(l.envFile + ".tmp")}`,
        `chmod 0600 ${q(l.envFile + ".tmp")}`,
        `mv -f ${q(l.envFile + ".tmp")} ${q(l.envFile)}`,
        `printf %s ${q(unitB64)} | base64 -d > ${q(l.unitFile + ".tmp")}`,
        `chmod 0644 ${q(l.unitFile + ".tmp")}`,
        `mv -f ${q(l.unitFile + ".tmp")} ${q(l.unitFile)}`,
        ...(systemd ? [`systemctl daemon-reload`, `systemctl enable ${q(s.service)} >/dev/null 2>&1`] : []),
        `echo "applied=true"`,
        "",
    ].join("\n");
}

/** Report the unit text (base64), env file hash and mode, and enablement, as the host has them. */
export function renderServiceRead(l: HostLayout, service: string, systemd: boolean): string {
    return [
        `if [ -f ${q(l.unitFile)} ]; then echo "unit=$(base64 -w0 < ${q(l.unitFile)})"; else echo "unit="; fi`,
        `if [ -f ${q(l.envFile)} ]; then echo "envSha256=$(sha256sum < ${q(l.envFile)} | cut -d' ' -f1)"; echo "envMode=$(stat -c %a ${q(l.envFile)})"; else echo "envSha256="; echo "envMode="; fi`,
        systemd ? `echo "enabled=$(systemctl is-enabled ${q(service)} 2>/dev/null || true)"` : `echo "enabled=enabled"`,
        "",
    ].join("\n");
}

export function renderServiceDelete(l: HostLayout, service: string, systemd: boolean): string {
    return [
        ...(systemd ? [`systemctl disable --now ${q(service)} >/dev/null 2>&1 || true`] : []),
        `rm -f ${q(l.unitFile)} ${q(l.envFile)}`,
        ...(systemd ? [`systemctl daemon-reload`] : []),
        `echo "deleted=true"`,
        "",
    ].join("\n");
}

export interface ActivationSpec {
    readonly service: string;
    readonly version: string;
    readonly sha256: string;
    readonly port: number;
    readonly healthPath: string;
    readonly timeoutSeconds: number;
    readonly intervalMs: number;
    /** Run in the new release directory before the switch; failure stops the activation. */
    readonly beforeActivate?: string;
    /** Who deploys, for revisions.log (operator or CI user). */
    readonly who: string;
    /** Whether to restart and health-check (false only for file-only tests under a temp root). */
    readonly systemd: boolean;
}

/**
 * The one way a release becomes current: lock, (hook), atomic switch
 * (temp link + rename(2)), restart, health gate on status *and* version, and
 * on failure switch back, restart and report. Every outcome goes to
 * revisions.log. Prints `outcome=…` plus what the health check saw.
 */
export function renderActivate(l: HostLayout, a: ActivationSpec): string {
    const url = `http://127.0.0.1:${a.port}${a.healthPath}`;
    return [
        `version=${q(a.version)}; sha=${q(a.sha256)}; who=${q(a.who)}; service=${q(a.service)}`,
        `current=${q(l.current)}; log=${q(l.revisionsLog)}; lock=${q(l.lockFile)}`,
        `mkdir -p ${q(l.baseDir)}`,
        `exec 9>>"$lock"`,
        `if ! flock -n 9; then echo "holder=$(cat "$lock.owner" 2>/dev/null || echo unknown)"; exit ${EXIT.locked}; fi`,
        `printf '%s pid %s since %s\\n' "$who" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$lock.owner"`,
        `record() { printf '%s\\tversion=%s\\tsha256=%s\\tby=%s\\t%s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$version" "$sha" "$who" "$1" >> "$log"; }`,
        `if [ ! -f ${q(path.posix.join(releaseDir(l, a.version), MANIFEST))} ]; then record "outcome=failed reason=release-incomplete"; exit ${EXIT.incompleteRelease}; fi`,
        `previous=$(readlink "$current" 2>/dev/null || true)`,
        `echo "previous=$previous"`,
        ...(a.beforeActivate !== undefined
            ? [
                  `if ! hook_out=$(cd ${q(releaseDir(l, a.version))} && bash -c ${q(a.beforeActivate)} 2>&1); then`,
                  `  record "outcome=failed reason=beforeActivate-hook"`,
                  `  echo "hook=$(printf '%s' "$hook_out" | tail -n 5 | tr '\\n' ' ')"`,
                  `  exit ${EXIT.hookFailed}`,
                  `fi`,
              ]
            : []),
        `switch_to() { ln -sfn "$1" "$current.tmp.$$" && mv -T "$current.tmp.$$" "$current"; }`,
        `seen="no answer"`,
        `healthy() {`,
        ...(a.systemd
            ? [
                  `  local want="$1" want_re body code deadline`,
                  `  want_re=$(printf '%s' "$want" | sed 's/[.+]/\\\\&/g')`,
                  `  deadline=$(( $(date +%s) + ${a.timeoutSeconds} ))`,
                  `  while :; do`,
                  `    if body=$(curl -sS -m ${Math.min(5, a.timeoutSeconds)} -w '\\n%{http_code}' ${q(url)} 2>&1); then`,
                  `      code=$(printf '%s' "$body" | tail -n 1); body=$(printf '%s' "$body" | sed '$d' | tr -d '\\n' | cut -c1-300)`,
                  `      seen="HTTP $code $body"`,
                  `      if [ "$code" = 200 ] && printf '%s' "$body" | grep -Eq '"status"[[:space:]]*:[[:space:]]*"healthy"' \\`,
                  `         && printf '%s' "$body" | grep -Eq "\\"version\\"[[:space:]]*:[[:space:]]*\\"$want_re\\""; then return 0; fi`,
                  `    else seen="$(printf '%s' "$body" | tail -n 1 | cut -c1-200)"; fi`,
                  `    [ "$(date +%s)" -lt "$deadline" ] || return 1`,
                  `    sleep ${(a.intervalMs / 1000).toFixed(3)}`,
                  `  done`,
              ]
            : [`  return 0`]),
        `}`,
        `restart() { ${a.systemd ? `systemctl restart "$service" || true` : ":"}; }`,
        `switch_to ${q(`releases/${a.version}`)}`,
        `restart`,
        `if healthy "$version"; then`,
        `  record "outcome=activated previous=\${previous#releases/}"`,
        `  echo "outcome=activated"`,
        `  exit 0`,
        `fi`,
        `failed_seen="$seen"`,
        `echo "seen=$failed_seen"`,
        `if [ -n "$previous" ] && [ "$previous" != ${q(`releases/${a.version}`)} ]; then`,
        `  switch_to "$previous"`,
        `  restart`,
        `  if healthy "\${previous#releases/}"; then back="healthy"; else back="NOT healthy: $seen"; fi`,
        `  record "outcome=failed-rolled-back to=\${previous#releases/} restored=$back"`,
        `  echo "restored=\${previous#releases/} ($back)"`,
        `else`,
        `  rm -f "$current"`,
        `  ${a.systemd ? `systemctl stop "$service" || true` : ":"}`,
        `  record "outcome=failed-no-previous-release stopped=true"`,
        `  echo "restored=none (no previous release: service stopped)"`,
        `fi`,
        `exit ${EXIT.healthFailed}`,
        "",
    ].join("\n");
}

/** What `current` points to and whether the service runs: the Read of an Activation. */
export function renderActivationRead(l: HostLayout, service: string, systemd: boolean): string {
    return [
        `echo "target=$(readlink ${q(l.current)} 2>/dev/null || true)"`,
        systemd ? `echo "active=$(systemctl is-active ${q(service)} 2>/dev/null || true)"` : `echo "active=active"`,
        "",
    ].join("\n");
}

/** Append one line to revisions.log (used when a provider records an outcome itself). */
export function renderRecord(l: HostLayout, line: string): string {
    return `mkdir -p ${q(l.baseDir)} && printf '%s\\t%s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${q(line)} >> ${q(l.revisionsLog)}\n`;
}
