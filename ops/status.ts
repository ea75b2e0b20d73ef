import * as path from "path";
import { parseArgs } from "util";
import { compareVersions, type StackConfig } from "../stacks/config";
import { STACK_NAME_PATTERN } from "../stacks/schema";
import { hostLayout, instancePorts, type HostLayout } from "../infra/render/layout";
import { parseKeyValues } from "../infra/render/protocol";
import { renderStatusScript } from "../infra/render/status";
import type { Transport } from "../infra/transport";
import { TARGET_OPTIONS, TARGET_USAGE, type TargetArgs } from "./target";

/**
 * `npm run status -- --stack <env> [--json]`: the runbook's verification, live from every host
 * over its pinned SSH connection — what runs, whether it answers healthy with the declared
 * version and how fast, the units, who holds the deploy lock, a canary in progress and its
 * error-rate watch's figures so far, the last revisions. Decisions
 * (what counts as a problem, the exit code) live here; the table is ./statusView.ts.
 */

export const STATUS_EXIT = {
    /** Every host answers healthy, on the declared version. */
    ok: 0,
    /** A host is unhealthy or not on the declared version (each problem is listed). */
    unhealthy: 1,
    /** A host could not be checked (unreachable, login or sudo refused) — or the tool could not start (arguments, stack, key). */
    unreachable: 2,
} as const;

/** The runbook's "response in < 2 seconds": slower is reported (a warning, not a failure). */
export const SLOW_SECONDS = 2;

export interface StatusArgs extends TargetArgs {
    readonly json: boolean;
    readonly help: boolean;
}

export const STATUS_USAGE = `usage: npm run status -- --stack <env> [--json] [--no-pulumi] [--key FILE]

Reads every host of <env> live over SSH (read-only): the live release and the standby, the
health answer through the service port (status, version, uptime), response times of / and
the health path, unit states, the deploy lock's holder, a canary in progress and the error-rate
watch's figures so far (not a failure by themselves), the last revisions.
  --json          one JSON document instead of the table
${TARGET_USAGE}
Exit: 0 every host healthy on the declared version, 1 a host unhealthy or on another version,
2 a host could not be reached (or bad arguments, stack or key).`;

export function parseStatusArgs(argv: string[]): StatusArgs {
    let values: { stack?: string | undefined; json?: boolean | undefined; "no-pulumi"?: boolean | undefined; key?: string | undefined; help?: boolean | undefined };
    try {
        ({ values } = parseArgs({ args: argv, options: { ...TARGET_OPTIONS, json: { type: "boolean" } }, strict: true, allowPositionals: false }));
    } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\n${STATUS_USAGE}`);
    }
    if (values.help) return { stack: "", json: false, noPulumi: false, help: true };
    if (values.stack === undefined || !STACK_NAME_PATTERN.test(values.stack)) throw new Error(`--stack <env> is required (dev, staging or prod)\n${STATUS_USAGE}`);
    return { stack: values.stack, json: values.json === true, noPulumi: values["no-pulumi"] === true, key: values.key, help: false };
}

export interface Probe {
    /** HTTP status; 0 when nothing answered. */
    readonly code: number;
    readonly seconds: number;
    /** curl's complaint when the request failed (refused, timed out). */
    readonly error?: string;
}

export interface HealthProbe extends Probe {
    readonly status?: string;
    readonly version?: string;
    readonly uptime?: number | string;
    /** The answer when it is not the expected JSON object (first 200 characters). */
    readonly body?: string;
}

export interface InstanceState {
    readonly port: number;
    /** Version the instance's link resolves to, undefined when there is none. */
    readonly version?: string;
    readonly link: string;
    readonly active: string;
    /** live: runs the release `current` names; canary: the release the proxy sends a canary share to; standby: another release, running; idle: none of these. */
    readonly role: "live" | "canary" | "standby" | "idle";
}

/** An error-rate watch in progress on the host (infra/render/host/watch.sh), from the host program's `watch=` line. */
export interface WatchNow {
    /** canary: the new release takes a share of new requests; soak: all of them, after the full switch. */
    readonly phase: string;
    readonly version: string;
    readonly port: number;
    /** ok: under the limit so far; few: too few requests yet to judge; trip: over it, the switch back follows. */
    readonly verdict: string;
    /** The window so far: its seconds, the new and the previous release's requests and errors, the limit. */
    readonly figures: string;
}

export interface HostStatus {
    readonly host: string;
    readonly address: string;
    readonly state: "ok" | "unhealthy" | "unreachable";
    /** Why the host could not be checked. */
    readonly error?: string;
    readonly checkedAt?: string;
    /** What `current` names: the link as written and the version it resolves to (undefined: dangling or missing). */
    readonly current?: { readonly link: string; readonly version?: string };
    readonly releases: string[];
    readonly instances: InstanceState[];
    readonly health?: HealthProbe;
    readonly root?: Probe;
    readonly units: Record<string, string>;
    readonly lock?: { readonly held: "yes" | "no" | "unknown"; readonly owner?: string };
    /** The release the proxy sends a canary share of new requests to: an activation is in its canary. */
    readonly canaryVersion?: string;
    /** The error-rate watch of the activation holding the lock, while it watches (canary or soak). */
    readonly watch?: WatchNow;
    readonly revisions: string[];
    /** Each one makes the host unhealthy (exit 1). */
    readonly problems: string[];
    /** Shown, but the host still counts as healthy. */
    readonly warnings: string[];
}

/** The version a resolved path names when it is a release directory of this layout. */
function versionOf(l: HostLayout, resolved: string | undefined): string | undefined {
    if (!resolved) return undefined;
    const rel = path.posix.relative(l.releasesDir, resolved);
    return rel !== "" && !rel.startsWith("..") && !rel.includes("/") ? rel : undefined;
}

function probe(kv: Record<string, string>, name: string): Probe {
    const curl = Number(kv[`${name}.curl`] ?? "0");
    return {
        code: Number(kv[`${name}.code`]) || 0,
        seconds: Number(kv[`${name}.seconds`]) || 0,
        ...(curl !== 0 ? { error: (kv[`${name}.error`] ?? "").trim() || `curl exit ${curl}` } : {}),
    };
}

function healthProbe(kv: Record<string, string>): HealthProbe {
    const base = probe(kv, "health");
    const text = Buffer.from(kv["health.body"] ?? "", "base64").toString("utf8");
    let parsed: unknown;
    try {
        parsed = JSON.parse(text);
    } catch {
        parsed = undefined;
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return text === "" ? base : { ...base, body: text.slice(0, 200) };
    const o = parsed as Record<string, unknown>;
    const uptime = o.uptime ?? o.uptimeSeconds ?? o.uptime_seconds;
    return {
        ...base,
        ...(typeof o.status === "string" ? { status: o.status } : {}),
        ...(typeof o.version === "string" ? { version: o.version } : {}),
        ...(typeof uptime === "number" || typeof uptime === "string" ? { uptime } : {}),
        ...(typeof o.status !== "string" ? { body: text.slice(0, 200) } : {}),
    };
}

/** The host program's `watch=` line: `phase=P version=V port=N verdict=W <figures>`; undefined when it says something else. */
export function parseWatchLine(line: string): WatchNow | undefined {
    const m = /^phase=(\S+) version=(\S+) port=(\d+) verdict=(\S+) (.*)$/.exec(line);
    if (m === null) return undefined;
    return { phase: m[1] as string, version: m[2] as string, port: Number(m[3]), verdict: m[4] as string, figures: m[5] as string };
}

/** Pure: a host's status script output → what runs there, judged against the declared version. */
export function hostStatusFrom(host: string, address: string, kv: Record<string, string>, c: Pick<StackConfig, "baseDir" | "service" | "health" | "version">): HostStatus {
    const l = hostLayout(c.baseDir, c.service.name);
    const problems: string[] = [];
    const warnings: string[] = [];
    const link = kv["current.link"] ?? "";
    const live = versionOf(l, kv["current.path"]);
    // A canary is a deploy in progress, not a failure: the declared version takes a share of new
    // requests while `current` still names the release before it, and either may answer a probe.
    const canaryVersion = kv.canaryVersion || undefined;
    if (link === "") problems.push(`no live release: ${l.current} does not exist`);
    else if (live === undefined) problems.push(`${l.current} points to ${link}, which is not a release directory that exists`);
    else if (live !== c.version && canaryVersion === c.version) warnings.push(`a canary of ${c.version} is in progress: it takes a share of new requests; ${live} stays live until the full switch`);
    else if (live !== c.version) problems.push(`live release is ${live}, declared version is ${c.version}`);
    const answeredDuringCanary = (v: string) => canaryVersion !== undefined && (v === canaryVersion || v === live);

    const health = healthProbe(kv);
    const healthUrl = `http://127.0.0.1:${c.service.port}${c.health.path}`;
    if (health.error !== undefined) problems.push(`no answer from ${healthUrl}: ${health.error}`);
    else if (health.code !== 200) problems.push(`${healthUrl} answered HTTP ${health.code}${health.status ? ` (status ${health.status})` : ""}`);
    else if (health.status === undefined) problems.push(`${healthUrl} did not answer a JSON object with a status: ${health.body ?? "(empty)"}`);
    else if (health.status !== "healthy") problems.push(`${healthUrl} reports status ${health.status}`);
    if (health.error === undefined && health.version !== undefined && health.version !== c.version && !answeredDuringCanary(health.version)) {
        problems.push(`${healthUrl} reports version ${health.version}, declared version is ${c.version}`);
    } else if (health.error === undefined && health.code === 200 && health.version === undefined) {
        problems.push(`${healthUrl} reports no version`);
    }
    const root = probe(kv, "root");
    const rootUrl = `http://127.0.0.1:${c.service.port}/`;
    if (root.error !== undefined) problems.push(`no answer from ${rootUrl}: ${root.error}`);
    else if (root.code >= 400) problems.push(`${rootUrl} answered HTTP ${root.code}`);
    for (const [what, p] of [["/", root], [c.health.path, health]] as const) {
        if (p.error === undefined && p.seconds > SLOW_SECONDS) warnings.push(`${what} took ${p.seconds.toFixed(2)} s (runbook: under ${SLOW_SECONDS} s)`);
    }

    const instances: InstanceState[] = instancePorts(c.service.port).map((port) => {
        const version = versionOf(l, kv[`instance.${port}.path`]);
        const active = kv[`instance.${port}.active`] || "unknown";
        const role =
            version === undefined ? "idle" : version === live ? "live" : version === canaryVersion ? "canary" : active === "active" ? "standby" : "idle";
        return { port, link: kv[`instance.${port}.link`] ?? "", active, role, ...(version !== undefined ? { version } : {}) };
    });
    const units: Record<string, string> = {};
    for (const [k, v] of Object.entries(kv)) if (k.startsWith("unit.")) units[k.slice(5)] = v || "unknown";
    for (const [unit, state] of Object.entries(units)) if (state === "failed") warnings.push(`${unit} has failed (journalctl -u ${unit})`);

    const held = kv["lock.held"];
    const lock: HostStatus["lock"] =
        held === "yes" ? { held, owner: kv["lock.owner"] || "unknown (no owner file)" } : held === "no" || held === "unknown" ? { held } : undefined;
    const revisions = Object.keys(kv)
        .filter((k) => /^revision\.\d+$/.test(k))
        .sort((a, b) => Number(a.slice(9)) - Number(b.slice(9)))
        .map((k) => kv[k] as string);
    const watchLine = kv.watch ?? "";
    const watch = parseWatchLine(watchLine);
    if (watchLine !== "" && watch === undefined) warnings.push(`the host program's watch line is not understood: ${watchLine.slice(0, 300)}`);
    return {
        host,
        address,
        state: problems.length > 0 ? "unhealthy" : "ok",
        ...(kv.now ? { checkedAt: kv.now } : {}),
        ...(link !== "" ? { current: { link, ...(live !== undefined ? { version: live } : {}) } } : {}),
        releases: (kv.releases ?? "").split(/\s+/).filter((v) => v !== "").sort(compareVersions),
        instances,
        health,
        root,
        units,
        ...(lock ? { lock } : {}),
        ...(canaryVersion !== undefined ? { canaryVersion } : {}),
        ...(watch !== undefined ? { watch } : {}),
        revisions,
        problems,
        warnings,
    };
}

export function unreachableHost(host: string, address: string, error: string): HostStatus {
    return { host, address, state: "unreachable", error, releases: [], instances: [], units: {}, revisions: [], problems: [], warnings: [] };
}

/** 2 when any host could not be checked (its health is unknown, the worse news), else 1 when any is unhealthy, else 0. */
export function statusExit(hosts: ReadonlyArray<HostStatus>): number {
    if (hosts.some((h) => h.state === "unreachable")) return STATUS_EXIT.unreachable;
    if (hosts.some((h) => h.state === "unhealthy")) return STATUS_EXIT.unhealthy;
    return STATUS_EXIT.ok;
}

export interface StatusTarget {
    readonly name: string;
    readonly address: string;
    readonly transport: Transport;
}

/** Seconds one host's status script may run: two probes of 5 s, the host program's status (at most 15 s) and a few systemctl calls. */
const SCRIPT_TIMEOUT_MS = 40000;

/** Every host in parallel; a host that cannot be reached or refuses the script is reported, never thrown. */
export async function collectStatus(c: StackConfig, targets: ReadonlyArray<StatusTarget>): Promise<HostStatus[]> {
    const script = renderStatusScript(hostLayout(c.baseDir, c.service.name), { service: c.service.name, port: c.service.port, healthPath: c.health.path });
    return Promise.all(
        targets.map(async (t) => {
            try {
                const r = await t.transport.exec(script, { timeoutMs: SCRIPT_TIMEOUT_MS });
                if (r.code !== 0) return unreachableHost(t.name, t.address, `the status script failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-400)}`);
                return hostStatusFrom(t.name, t.address, parseKeyValues(r.stdout), c);
            } catch (e) {
                return unreachableHost(t.name, t.address, e instanceof Error ? e.message : String(e));
            }
        }),
    );
}
