import { failoverProblem } from "../infra/agent/failover";
import * as path from "path";
import { parseArgs } from "util";
import { compareVersions, type StackConfig } from "../stacks/config";
import { STACK_NAME_PATTERN } from "../stacks/schema";
import { hostLayout, instancePorts, type HostLayout } from "../infra/render/layout";
import { parseStatusAnswer, type AgentProbe, type AgentState } from "../infra/agent/state";
import { HOST_STATE_TIMEOUT_S, renderStatusScript } from "../infra/render/status";
import type { Transport } from "../infra/transport";
import { TARGET_OPTIONS, TARGET_USAGE, type TargetArgs } from "./target";

/**
 * `npm run status -- --stack <env> [--json]`: the runbook's verification, live from every host
 * over its pinned SSH connection — what runs, whether it answers healthy with the declared
 * version and how fast, the units, who holds the deploy lock, a canary in progress and its
 * watch's figures so far, the last revisions. Decisions (problems, the exit code) live here; the table is ./statusView.ts.
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
    /** Redraw a live table every second until Ctrl-C (ops/live/). */
    readonly watch: boolean;
    readonly help: boolean;
}

export const STATUS_USAGE = `usage: npm run status -- --stack <env> [--json | --watch] [--no-pulumi] [--key FILE]

Reads every host of <env> live over SSH (read-only): the live release and the standby, the
health answer through the service port (status, version, uptime), response times of / and
the health path, unit states, the deploy lock's holder, a canary in progress and the error-rate
watch's figures so far (not a failure by themselves), the last revisions.
  --json          one JSON document instead of the table
  --watch         a live table redrawn every second until Ctrl-C: each host's phase, live, standby,
                  canary share, requests, errors and response time per release, lock holder
${TARGET_USAGE}
Exit: 0 every host healthy on the declared version, 1 a host unhealthy or on another version,
2 a host could not be reached (or bad arguments, stack or key).`;

export function parseStatusArgs(argv: string[]): StatusArgs {
    let values: { stack?: string | undefined; json?: boolean | undefined; watch?: boolean | undefined; "no-pulumi"?: boolean | undefined; key?: string | undefined; help?: boolean | undefined };
    try {
        ({ values } = parseArgs({ args: argv, options: { ...TARGET_OPTIONS, json: { type: "boolean" }, watch: { type: "boolean" } }, strict: true, allowPositionals: false }));
    } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\n${STATUS_USAGE}`);
    }
    if (values.help) return { stack: "", json: false, watch: false, noPulumi: false, help: true };
    if (values.stack === undefined || !STACK_NAME_PATTERN.test(values.stack)) throw new Error(`--stack <env> is required (dev, staging or prod)\n${STATUS_USAGE}`);
    if (values.json && values.watch) throw new Error(`--json and --watch: choose one (--json prints one document, --watch redraws a table)\n${STATUS_USAGE}`);
    return { stack: values.stack, json: values.json === true, watch: values.watch === true, noPulumi: values["no-pulumi"] === true, key: values.key, help: false };
}

export interface Probe {
    /** HTTP status; 0 when nothing answered. */
    readonly code: number;
    readonly seconds: number;
    /** Why the request failed (refused, timed out), as the host agent reports it. */
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

/** An error-rate watch in progress on the host, as the host agent's `state` reads it (its `watch`). */
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

function probe(p: AgentProbe): Probe {
    const error = (p.error ?? "").trim();
    return {
        code: p.code,
        seconds: p.seconds,
        // Nothing answered: the agent says why (never without, but a code 0 is no answer either way).
        ...(error !== "" ? { error } : p.code === 0 ? { error: "no HTTP answer" } : {}),
    };
}

function healthProbe(p: AgentProbe): HealthProbe {
    const base = probe(p);
    const text = p.body ?? "";
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

/** The units in the order an operator reads them: the umbrella, the proxy, the instances, then anything else the agent named. */
function orderedUnits(service: string, port: number, units: Readonly<Record<string, string>>): Record<string, string> {
    const known = [`${service}.service`, `${service}-proxy.service`, `${service}-failover.service`, ...instancePorts(port).map((p) => `${service}@${p}.service`)];
    const names = [...known.filter((u) => u in units), ...Object.keys(units).filter((u) => !known.includes(u)).sort()];
    return Object.fromEntries(names.map((u) => [u, units[u] || "unknown"]));
}

/** A host without the agent: nothing on it can be read, and the deploy that installs the agent is the fix. */
function noAgentHost(host: string, address: string, l: HostLayout): HostStatus {
    return {
        host,
        address,
        state: "unhealthy",
        releases: [],
        instances: [],
        units: {},
        revisions: [],
        problems: [`the host agent is not installed (${l.hostProgram}): run pulumi up`],
        warnings: [],
    };
}

/** Pure: a host's agent state (null: no agent there) → what runs there, judged against the declared version. */
export function hostStatusFrom(host: string, address: string, s: AgentState | null, c: Pick<StackConfig, "baseDir" | "service" | "health" | "version">): HostStatus {
    const l = hostLayout(c.baseDir, c.service.name);
    if (s === null) return noAgentHost(host, address, l);
    const problems: string[] = [];
    const warnings: string[] = [];
    const link = s.current.link;
    const live = versionOf(l, s.current.path);
    // A canary is a deploy in progress, not a failure: the declared version takes a share of new
    // requests while `current` still names the release before it, and either may answer a probe.
    const canaryVersion = s.canaryVersion || undefined;
    if (link === "") problems.push(`no live release: ${l.current} does not exist`);
    else if (live === undefined) problems.push(`${l.current} points to ${link}, which is not a release directory that exists`);
    else if (live !== c.version && canaryVersion === c.version) warnings.push(`a canary of ${c.version} is in progress: it takes a share of new requests; ${live} stays live until the full switch`);
    else if (live !== c.version) problems.push(`live release is ${live}, declared version is ${c.version}`);
    if (s.failedOver) problems.push(failoverProblem(s.failedOver, c.version));
    const answeredDuringCanary = (v: string) => canaryVersion !== undefined && (v === canaryVersion || v === live);

    const healthUrl = `http://127.0.0.1:${c.service.port}${c.health.path}`;
    const health = s.health !== undefined ? healthProbe(s.health) : undefined;
    if (health === undefined) problems.push(`the host agent did not probe ${healthUrl}`);
    else if (health.error !== undefined) problems.push(`no answer from ${healthUrl}: ${health.error}`);
    else if (health.code !== 200) problems.push(`${healthUrl} answered HTTP ${health.code}${health.status ? ` (status ${health.status})` : ""}`);
    else if (health.status === undefined) problems.push(`${healthUrl} did not answer a JSON object with a status: ${health.body ?? "(empty)"}`);
    else if (health.status !== "healthy") problems.push(`${healthUrl} reports status ${health.status}`);
    if (health !== undefined && health.error === undefined && health.version !== undefined && health.version !== c.version && !answeredDuringCanary(health.version)) {
        problems.push(`${healthUrl} reports version ${health.version}, declared version is ${c.version}`);
    } else if (health !== undefined && health.error === undefined && health.code === 200 && health.version === undefined) {
        problems.push(`${healthUrl} reports no version`);
    }
    const rootUrl = `http://127.0.0.1:${c.service.port}/`;
    const root = s.root !== undefined ? probe(s.root) : undefined;
    if (root === undefined) problems.push(`the host agent did not probe ${rootUrl}`);
    else if (root.error !== undefined) problems.push(`no answer from ${rootUrl}: ${root.error}`);
    else if (root.code >= 400) problems.push(`${rootUrl} answered HTTP ${root.code}`);
    // Anyone beside the proxy on the service port (on IPv6, or another address) answers users too.
    if (s.proxy.foreign.length > 0) problems.push(`port ${c.service.port} is also held by ${s.proxy.foreign.join("; ")}, not only by ${c.service.name}-proxy.service`);
    for (const [what, p] of [["/", root], [c.health.path, health]] as const) {
        if (p !== undefined && p.error === undefined && p.seconds > SLOW_SECONDS) warnings.push(`${what} took ${p.seconds.toFixed(2)} s (runbook: under ${SLOW_SECONDS} s)`);
    }

    const instances: InstanceState[] = instancePorts(c.service.port).map((port) => {
        const slot = s.instances.find((i) => i.port === port);
        const version = versionOf(l, slot?.path);
        const active = slot?.active || "unknown";
        const role =
            version === undefined ? "idle" : version === live ? "live" : version === canaryVersion ? "canary" : active === "active" ? "standby" : "idle";
        return { port, link: slot?.link ?? "", active, role, ...(version !== undefined ? { version } : {}) };
    });
    const units = orderedUnits(c.service.name, c.service.port, s.units);
    for (const [unit, state] of Object.entries(units)) if (state === "failed") warnings.push(`${unit} has failed (journalctl -u ${unit})`);

    const lock: HostStatus["lock"] = s.lock.held === "yes" ? { held: "yes", owner: s.lock.owner || "unknown (no owner file)" } : { held: s.lock.held };
    // The agent reads the watch only while the lock is held; one that names nothing is reported, not shown.
    const w = s.watch;
    const watch: WatchNow | undefined = w !== null && w.phase !== "" && w.version !== "" && w.port > 0 ? { phase: w.phase, version: w.version, port: w.port, verdict: w.verdict, figures: w.figures } : undefined;
    if (w !== null && watch === undefined) warnings.push(`the host agent's watch is not understood: ${JSON.stringify(w).slice(0, 300)}`);
    return {
        host,
        address,
        state: problems.length > 0 ? "unhealthy" : "ok",
        ...(s.now ? { checkedAt: s.now } : {}),
        ...(link !== "" ? { current: { link, ...(live !== undefined ? { version: live } : {}) } } : {}),
        releases: s.releaseDirs.filter((v) => v !== "").sort(compareVersions),
        instances,
        ...(health !== undefined ? { health } : {}),
        ...(root !== undefined ? { root } : {}),
        units,
        lock,
        ...(canaryVersion !== undefined ? { canaryVersion } : {}),
        ...(watch !== undefined ? { watch } : {}),
        revisions: [...s.revisions],
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

/** Milliseconds one host's status script may run: the agent's `state` (bounded on the host) and the SSH round trip. */
const SCRIPT_TIMEOUT_MS = (HOST_STATE_TIMEOUT_S + 15) * 1000;

/** Every host in parallel; a host that cannot be reached or refuses the script is reported, never thrown. */
export async function collectStatus(c: StackConfig, targets: ReadonlyArray<StatusTarget>): Promise<HostStatus[]> {
    const script = renderStatusScript(hostLayout(c.baseDir, c.service.name), { service: c.service.name, port: c.service.port, healthPath: c.health.path });
    return Promise.all(
        targets.map(async (t) => {
            try {
                const r = await t.transport.exec(script, { timeoutMs: SCRIPT_TIMEOUT_MS });
                if (r.code !== 0) return unreachableHost(t.name, t.address, `the status script failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-400)}`);
                // An answer that is not the agent's leaves the host unchecked: its message names the host and the field.
                return hostStatusFrom(t.name, t.address, parseStatusAnswer(r.stdout, t.name), c);
            } catch (e) {
                return unreachableHost(t.name, t.address, e instanceof Error ? e.message : String(e));
            }
        }),
    );
}
