import * as path from "path";
import { HostLayout, releaseDir } from "./layout";
import { EXIT, MANIFEST } from "./protocol";
import { q } from "./shell";

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
