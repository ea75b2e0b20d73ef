import { z } from "zod";
import { configSchema, ParsedConfig } from "./schema";

export const NAMESPACE = "complinist";
const SECRET_KEYS = new Set(["sshPrivateKey", "releaseAuth", "notify"]);

/** Per-environment rules that the stack file cannot loosen. */
export interface EnvironmentPolicy {
    /** Resources get `protect: true`: `pulumi destroy` and accidental deletes are refused. */
    readonly protect: boolean;
    /** A stack whose deployed version this one must take (promotion gate). */
    readonly requiresPromotion: boolean;
    /** Hosts activated per batch when `rollout.batchSize` is unset. */
    readonly defaultBatchSize: (hostCount: number) => number;
}

export function isProduction(stack: string): boolean {
    const last = stack.split("/").pop() ?? stack;
    return last === "prod" || last === "production";
}

export function policyFor(stack: string): EnvironmentPolicy {
    return isProduction(stack)
        ? { protect: true, requiresPromotion: true, defaultBatchSize: () => 1 }
        : { protect: false, requiresPromotion: false, defaultBatchSize: (n) => n };
}

/** The validated configuration of one stack, defaults applied. */
export interface StackConfig extends ParsedConfig {
    readonly stack: string;
    readonly policy: EnvironmentPolicy;
    /** Hosts activated per batch, after defaults. */
    readonly batchSize: number;
}

export class ConfigError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "ConfigError";
    }
}

/**
 * Pulumi hands config values over as strings ("complinist:hosts" → JSON text).
 * Structured values are parsed; scalars stay strings and the schema coerces.
 */
function decode(value: string): unknown {
    const t = value.trim();
    if (t.startsWith("{") || t.startsWith("[")) {
        try {
            return JSON.parse(t);
        } catch {
            return value;
        }
    }
    return value;
}

function formatPath(segments: ReadonlyArray<PropertyKey>): string {
    let out = `${NAMESPACE}:${String(segments[0] ?? "")}`;
    for (const s of segments.slice(1)) out += typeof s === "number" ? `[${s}]` : `.${String(s)}`;
    return out;
}

function valueAt(root: unknown, segments: ReadonlyArray<PropertyKey>): unknown {
    let v: unknown = root;
    for (const s of segments) {
        if (v === null || typeof v !== "object") return undefined;
        v = (v as Record<PropertyKey, unknown>)[s];
    }
    return v;
}

/** A refused URL is quoted back, but a password in it must not reach the log. */
function withoutPassword(text: string): string {
    return text.replace(/(\/\/[^/?#@\s:"]*):[^/?#@\s"]*@/g, "$1:***@");
}

function describeIssue(raw: Record<string, unknown>, issue: z.core.$ZodIssue): string {
    const key = formatPath(issue.path);
    if (issue.code === "unrecognized_keys") {
        const where = issue.path.length ? `${key}.` : `${NAMESPACE}:`;
        return issue.keys.map((k) => `${where}${k}: unknown key (a typo?); see the config reference in README.md`).join("\n  - ");
    }
    if (issue.code === "invalid_key") {
        const bad = String(issue.path[issue.path.length - 1]);
        return `${key}: the key ${JSON.stringify(bad)} ${issue.issues.map((i) => i.message).join("; ")}`;
    }
    const value = valueAt(raw, issue.path);
    const secret = SECRET_KEYS.has(String(issue.path[0]));
    const seen = value === undefined ? "missing" : secret ? "a secret value" : withoutPassword(JSON.stringify(value));
    return `${key}: ${issue.message} (got ${seen})`;
}

/**
 * Validate a stack's raw `complinist:*` config (as `pulumi.runtime.allConfig()`
 * returns it). Pure: throws ConfigError naming stack, key, value and what is
 * accepted; nothing is registered before this returns.
 */
export function parseStackConfig(stack: string, allConfig: Record<string, string>): StackConfig {
    const raw: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(allConfig)) {
        const [ns, ...rest] = k.split(":");
        if (ns !== NAMESPACE) continue;
        raw[rest.join(":")] = decode(v);
    }
    const result = configSchema.safeParse(raw);
    const problems: string[] = [];
    if (!result.success) {
        problems.push(...result.error.issues.map((i) => describeIssue(raw, i)));
    }
    const policy = policyFor(stack);
    if (result.success && policy.requiresPromotion && result.data.promoteFrom === undefined) {
        problems.push(`${NAMESPACE}:promoteFrom: is required for production stacks: the stack whose deployed version may be promoted, e.g. staging (got missing)`);
    }
    if (!result.success || problems.length > 0) {
        throw new ConfigError(`Invalid configuration for stack '${stack}':\n  - ${problems.join("\n  - ")}`);
    }
    const data = result.data;
    const batchSize = Math.min(data.rollout.batchSize ?? policy.defaultBatchSize(data.hosts.length), data.hosts.length);
    return { ...data, stack, policy, batchSize };
}

/** Compare versions the way an operator reads them: numeric segments numerically. */
export function compareVersions(a: string, b: string): number {
    const pa = a.split(/[.+_-]/);
    const pb = b.split(/[.+_-]/);
    for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
        const x = pa[i];
        const y = pb[i];
        if (x === undefined) return -1;
        if (y === undefined) return 1;
        const nx = /^\d+$/.test(x) ? Number(x) : NaN;
        const ny = /^\d+$/.test(y) ? Number(y) : NaN;
        const c = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
        if (c !== 0) return c;
    }
    return 0;
}

/**
 * The releases each host keeps: the active version, the pinned rollback
 * target, then the newest releases older than both until `keepReleases` is reached. Anything
 * outside this set is deleted by the engine (never the one `current` points to).
 */
export function keptVersions(c: Pick<ParsedConfig, "version" | "rollbackVersion" | "releases" | "keepReleases">): string[] {
    const kept = [c.version];
    if (c.rollbackVersion !== undefined) kept.push(c.rollbackVersion);
    // Only releases older than the newer of `version` and `rollbackVersion`: anything newer was
    // never deployed, and pre-uploading it would let one wrong future entry block every deploy,
    // rollbacks included. After a rollback the kept set is the one before it: nothing to upload.
    const newest = kept.reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b));
    const others = Object.keys(c.releases)
        .filter((v) => !kept.includes(v) && compareVersions(v, newest) < 0)
        .sort((a, b) => compareVersions(b, a));
    for (const v of others) {
        if (kept.length >= c.keepReleases) break;
        kept.push(v);
    }
    return kept;
}

/** Hosts grouped into rollout batches, in config order. */
export function batches<T>(hosts: ReadonlyArray<T>, size: number): T[][] {
    const out: T[][] = [];
    for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size));
    return out;
}
