import { z } from "zod";
import { configSchema, ParsedConfig } from "./schema";

export const NAMESPACE = "complinist";
/** Keys redacted from errors even when set in plain text: what they hold is a credential by definition. */
const ALWAYS_SECRET_KEYS: ReadonlyArray<string> = ["sshPrivateKey", "releaseAuth", "notify"];
/** What stands where a secret value would be quoted (errors, the banner). */
export const SECRET_MARK = "[secret]";
/**
 * Values shorter than this are not taken out of a message's text: they would cut words of the
 * message itself, and a credential is longer (the host agent's Redact keeps the same floor).
 */
const REDACT_MIN_LENGTH = 4;

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
    /**
     * The top-level keys (without the namespace) set with `pulumi config set --secret`, as
     * pulumi.runtime.isConfigSecret answers: Pulumi marks a whole key secret when any value under it
     * is (`--secret --path complinist:hooks.beforeActivate` makes `hooks` secret).
     */
    readonly secretKeys: ReadonlyArray<string>;
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

function isObject(v: unknown): v is object {
    return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Every string under a config value (a whole value that is no JSON is one string). */
function stringLeaves(v: unknown): string[] {
    if (typeof v === "string") return [v];
    if (Array.isArray(v)) return v.flatMap(stringLeaves);
    if (v !== null && typeof v === "object") return Object.values(v).flatMap(stringLeaves);
    return [];
}

/** The text with every one of `secrets` (longest first, so no part of a longer one stays) replaced by SECRET_MARK. */
function redact(text: string, secrets: ReadonlyArray<string>): string {
    let out = text;
    for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join(SECRET_MARK);
    return out;
}

function describeIssue(raw: Record<string, unknown>, issue: z.core.$ZodIssue, secretKeys: ReadonlySet<string>, secretValues: ReadonlyArray<string>): string {
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
    const secret = secretKeys.has(String(issue.path[0]));
    const seen = value === undefined ? "missing" : secret ? "a secret value" : withoutPassword(JSON.stringify(value));
    // A message may quote a value itself (a duplicate host name): a secret key's values are taken out of it.
    return `${key}: ${redact(issue.message, secretValues)} (got ${seen})`;
}

/**
 * Validate a stack's raw `complinist:*` config (as `pulumi.runtime.allConfig()`
 * returns it). Pure: throws ConfigError naming stack, key, value and what is
 * accepted; nothing is registered before this returns. `secretKeys` are the config's
 * keys set with --secret (namespaced, as pulumi.runtime.isConfigSecret takes them):
 * no error quotes a value under one of them.
 */
export function parseStackConfig(stack: string, allConfig: Record<string, string>, secretKeys: Iterable<string> = []): StackConfig {
    const raw: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(allConfig)) {
        const [ns, ...rest] = k.split(":");
        if (ns !== NAMESPACE) continue;
        raw[rest.join(":")] = decode(v);
    }
    const secret = [...new Set([...secretKeys].filter((k) => k.startsWith(`${NAMESPACE}:`)).map((k) => k.slice(NAMESPACE.length + 1)))];
    const redacted = new Set([...secret, ...ALWAYS_SECRET_KEYS]);
    // releaseAuth's origins are named in its errors (a URL outside them): only its header is the credential.
    const secretPart = (k: string): unknown => (k === "releaseAuth" && isObject(raw[k]) && "header" in (raw[k] as object) ? (raw[k] as { header: unknown }).header : raw[k]);
    const secretValues = [...redacted].flatMap((k) => stringLeaves(secretPart(k))).filter((v) => v.length >= REDACT_MIN_LENGTH);
    const result = configSchema.safeParse(raw);
    const problems: string[] = [];
    if (!result.success) {
        problems.push(...result.error.issues.map((i) => describeIssue(raw, i, redacted, secretValues)));
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
    return { ...data, stack, policy, batchSize, secretKeys: secret };
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
