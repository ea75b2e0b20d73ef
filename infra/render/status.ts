import { HostLayout, instancePorts } from "./layout";
import { q } from "./shell";

/** What a status probe needs to know beyond the layout. */
export interface StatusProbe {
    readonly service: string;
    /** The service port: the proxy (or, before zero-downtime activation, the app itself). */
    readonly port: number;
    readonly healthPath: string;
}

/** Seconds one HTTP probe may take: a hung app must not hang the operator's status. */
export const PROBE_TIMEOUT_S = 5;
/** Bytes of a health body a status reads (the rest is cut unread, as in the host program's probes). */
export const PROBE_MAX_BYTES = 65536;
/** revisions.log lines reported. */
export const REVISIONS_SHOWN = 5;
/** Seconds the host program's own `status` may take (it probes the service port once, within 5 s). */
export const HOST_STATUS_TIMEOUT_S = 15;

/**
 * A read-only look at one host, printed as `key=value` lines (protocol.ts):
 *   now, current.link, current.path, releases    the live release and what is kept
 *   instance.<port>.link|path|active              which release each app instance runs
 *   unit.<name>                                    `systemctl is-active` of every unit
 *   health.code|seconds|curl|error|body            GET <healthPath> through the service port (body base64)
 *   root.code|seconds|curl|error                   GET / through the service port
 *   lock.held (yes|no|unknown), lock.owner         the deploy lock and, while held, its holder
 *   revision.<n>                                   the last revisions.log lines, oldest first
 *   canaryVersion, watch                           the host program's own status keys: the release the
 *                                                  proxy sends a canary share to, the watch in progress
 * Nothing on the host changes: the lock file is never created (flock would create it),
 * the host program's `status` is read-only, and the only file written is a temp dir removed on exit.
 */
export function renderStatusScript(l: HostLayout, p: StatusProbe): string {
    const ports = instancePorts(p.port);
    const units = [`${p.service}.service`, `${p.service}-proxy.service`, ...ports.map((port) => `${p.service}@${port}.service`)];
    const base = `http://127.0.0.1:${p.port}`;
    return [
        `tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT`,
        `lock=${q(l.lockFile)}`,
        `echo "now=$(date -u +%Y-%m-%dT%H:%M:%SZ)"`,
        `echo "current.link=$(readlink ${q(l.current)} 2>/dev/null || true)"`,
        // -e, not -f: a link to a deleted release resolves to nothing instead of a path that is not there.
        `echo "current.path=$(readlink -e ${q(l.current)} 2>/dev/null || true)"`,
        `echo "releases=$(find ${q(l.releasesDir)} -mindepth 1 -maxdepth 1 -type d -printf '%f ' 2>/dev/null || true)"`,
        ...ports.flatMap((port) => {
            const link = q(`${l.instancesDir}/${port}`);
            return [
                `echo "instance.${port}.link=$(readlink ${link} 2>/dev/null || true)"`,
                `echo "instance.${port}.path=$(readlink -e ${link} 2>/dev/null || true)"`,
                `echo "instance.${port}.active=$(systemctl is-active ${q(`${p.service}@${port}.service`)} 2>/dev/null || true)"`,
            ];
        }),
        ...units.map((u) => `echo "unit.${u}=$(systemctl is-active ${q(u)} 2>/dev/null || true)"`),
        // Bounded in time (-m) and in bytes: the body passes through head -c, the write-out and
        // curl's own error go to stderr (its last line is the write-out).
        `probe() {`,
        `  local rc=0 out wo`,
        `  out=$( { curl -sS -m ${PROBE_TIMEOUT_S} -o - -w '%{stderr}%{http_code} %{time_total}\\n' "$2" | head -c ${PROBE_MAX_BYTES} >"$tmp/$1.body"; exit "\${PIPESTATUS[0]}"; } 2>&1 ) || rc=$?`,
        `  wo=$(printf '%s\\n' "$out" | tail -n 1)`,
        `  echo "$1.code=\${wo%% *}"`,
        `  echo "$1.seconds=\${wo##* }"`,
        `  echo "$1.curl=$rc"`,
        `  if [ "$rc" -ne 0 ]; then echo "$1.error=$(printf '%s\\n' "$out" | sed '$d' | head -c 300 | tr -c '[:print:]' ' ')"; fi`,
        `}`,
        `probe health ${q(base + p.healthPath)}`,
        `if [ -s "$tmp/health.body" ]; then echo "health.body=$(head -c 8192 "$tmp/health.body" | base64 -w0)"; fi`,
        `probe root ${q(base + "/")}`,
        // flock(1) creates a missing file, and a status must not: no file, no holder.
        `held=no`,
        `if [ -e "$lock" ]; then`,
        `  rc=0; flock -n -E 75 "$lock" true 2>/dev/null || rc=$?`,
        `  case "$rc" in 0) held=no ;; 75) held=yes ;; *) held=unknown ;; esac`,
        `fi`,
        `echo "lock.held=$held"`,
        // The owner file outlives its holder: it only means something while the lock is held.
        `if [ "$held" = yes ]; then echo "lock.owner=$(head -n 1 "$lock.owner" 2>/dev/null || true)"; fi`,
        // The canary (the proxy config's weighted servers) and the watch in progress (the activation's
        // figures file) are the host program's to read: its own status says both, so their format has
        // one reader. A host it was never installed on has neither.
        `hs=""`,
        `if [ -x ${q(l.hostProgram)} ]; then hs=$(timeout ${HOST_STATUS_TIMEOUT_S} ${q(l.hostProgram)} status 2>/dev/null || true); fi`,
        `echo "canaryVersion=$(printf '%s\\n' "$hs" | sed -n 's/^canaryVersion=//p' | head -n 1)"`,
        `echo "watch=$(printf '%s\\n' "$hs" | sed -n 's/^watch=//p' | head -n 1)"`,
        `n=0`,
        `if [ -f ${q(l.revisionsLog)} ]; then`,
        `  while IFS= read -r line; do n=$((n + 1)); printf 'revision.%d=%s\\n' "$n" "$line"; done < <(tail -n ${REVISIONS_SHOWN} ${q(l.revisionsLog)})`,
        `fi`,
        "",
    ].join("\n");
}
