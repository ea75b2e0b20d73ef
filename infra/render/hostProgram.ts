import * as fs from "fs";
import * as path from "path";
import { HostLayout } from "./layout";
import { EXIT, MANIFEST } from "./protocol";
import { q } from "./shell";

/**
 * The host program installed at `/usr/local/sbin/<service>`: one bash program for the
 * activation a deploy runs and for the operator's emergency commands, so both take the
 * same locked, gated, recorded path. Its command families live one per file in
 * `host/` (lock, record, health, proxy, watch, instances, containers, activate, main); this renderer puts the
 * host layout in front of them. Host-specific values come only from here and from the
 * deploy settings file (see renderDeploySettings), both quoted with q().
 */
export const HOST_PROGRAM_PARTS = ["lock", "record", "health", "proxy", "watch", "instances", "containers", "activate", "main"] as const;

type Part = (typeof HOST_PROGRAM_PARTS)[number];
// Read once at module load: providers are serialized with the text itself, never with a
// path to read at apply time (Pulumi's closure serializer captures module values).
const PARTS = Object.fromEntries(HOST_PROGRAM_PARTS.map((p) => [p, fs.readFileSync(path.join(__dirname, "host", `${p}.sh`), "utf8")])) as Record<Part, string>;

export function hostProgramPart(part: Part): string {
    return PARTS[part];
}

/** How app instances run: release mode's processes, or container mode's containers. */
export type InstanceRuntime = "process" | "docker";

export function renderHostProgram(l: HostLayout, service: string, runtime: InstanceRuntime = "process"): string {
    const vars: Record<string, string | number> = {
        SERVICE: service,
        RUNTIME: runtime,
        BASE_DIR: l.baseDir,
        RELEASES_DIR: l.releasesDir,
        CURRENT: l.current,
        SHARED_DIR: l.sharedDir,
        INSTANCES_DIR: l.instancesDir,
        ACTIVATIONS_DIR: l.activationsDir,
        LOCK_FILE: l.lockFile,
        REVISIONS_LOG: l.revisionsLog,
        DEPLOY_LOG: l.deployLog,
        ENV_DIR: l.envDir,
        ENV_FILE: l.envFile,
        UNIT_DIR: path.posix.dirname(l.unitFile),
        PROXY_CONFIG: l.proxyConfig,
        PROXY_RUN_DIR: l.proxyRunDir,
        PROXY_STATS_SOCKET: l.proxyStatsSocket,
        DEPLOY_CONFIG: l.deployConfig,
        HOST_PROGRAM: l.hostProgram,
        MANIFEST,
        EXIT_INCOMPLETE: EXIT.incompleteRelease,
        EXIT_HOOK: EXIT.hookFailed,
        EXIT_HEALTH: EXIT.healthFailed,
        EXIT_REFUSED: EXIT.refused,
        EXIT_LOCKED: EXIT.locked,
        EXIT_USAGE: EXIT.usage,
    };
    return [
        "#!/bin/bash",
        `# Managed by the CompliNist Pulumi stack (${service}): \`${l.hostProgram} --help\`. Re-installed by every pulumi up.`,
        "set -euo pipefail",
        ...Object.entries(vars).map(([k, v]) => `${k}=${q(v)}`),
        ...HOST_PROGRAM_PARTS.map(hostProgramPart),
        'main "$@"',
        "",
    ].join("\n");
}

/** What the gate and the switch need, per activation; the last successful one stays as `deploy.conf`. */
export interface DeploySettings {
    readonly port: number;
    readonly user: string;
    readonly healthPath: string;
    readonly timeoutSeconds: number;
    readonly intervalMs: number;
    readonly soakSeconds: number;
    readonly drainSeconds: number;
    readonly checks: ReadonlyArray<{ readonly path: string; readonly status: number; readonly maxMs: number }>;
    readonly standby: boolean;
    readonly rollbackVersion: string;
    readonly beforeActivate: string;
    readonly hookTimeoutSeconds: number;
    /** After the gate, this share of new requests goes to the new release for `seconds` (percent 0: no canary). */
    readonly canary: { readonly percent: number; readonly seconds: number };
    /** The error-rate watch of the canary and the soak (host/watch.sh). */
    readonly watch: { readonly errorRateFactor: number; readonly minRequests: number; readonly maxErrorRatio: number };
    /** The stack acknowledges this version although the watch rolled back from it (acknowledgeRolledBack). */
    readonly acknowledged: boolean;
    /** Identity of the unit, env and gate: an instance started with another one is not reused. */
    readonly revision: string;
}

export function renderDeploySettings(s: DeploySettings): string {
    return [
        "# Managed by the CompliNist Pulumi stack: the settings of the last successful activation.",
        `PORT=${q(s.port)}`,
        `APP_USER=${q(s.user)}`,
        `HEALTH_PATH=${q(s.healthPath)}`,
        `TIMEOUT=${q(s.timeoutSeconds)}`,
        `INTERVAL=${q((s.intervalMs / 1000).toFixed(3))}`,
        `SOAK=${q(s.soakSeconds)}`,
        `DRAIN=${q(s.drainSeconds)}`,
        `CHECKS=(${s.checks.map((c) => q(`${c.path}|${c.status}|${c.maxMs}`)).join(" ")})`,
        `STANDBY=${s.standby ? 1 : 0}`,
        `ROLLBACK_VERSION=${q(s.rollbackVersion)}`,
        `HOOK=${q(s.beforeActivate)}`,
        `HOOK_TIMEOUT=${q(s.hookTimeoutSeconds)}`,
        `CANARY_PERCENT=${q(s.canary.percent)}`,
        `CANARY_SECONDS=${q(s.canary.seconds)}`,
        `WATCH_FACTOR=${q(s.watch.errorRateFactor)}`,
        `WATCH_MIN_REQUESTS=${q(s.watch.minRequests)}`,
        `WATCH_MAX_RATIO=${q(s.watch.maxErrorRatio)}`,
        `ACKNOWLEDGED=${s.acknowledged ? 1 : 0}`,
        `REV=${q(s.revision)}`,
        "",
    ].join("\n");
}
