import type { ConfigMap, ConfigValue, EngineEvent, OpMap, OutputMap } from "@pulumi/pulumi/automation";
import { keptVersions } from "../stacks/config";
import type { ParsedConfig } from "../stacks/schema";

/**
 * The rollback's decision, apart from its execution (ops/rollback.ts): what the stack
 * says about itself, and which version to roll back to — or why not. Pure but for
 * reading the stack, so it is tested without the Pulumi CLI.
 */

export const VERSION_KEY = "complinist:version";
export const ROLLBACK_KEY = "complinist:rollbackVersion";

/** The part of `automation.Stack` the rollback uses (test/unit/ops/rollback.test.ts makes tsc prove the real Stack fits). */
export interface RollbackStack {
    readonly name: string;
    /** Rejects when the key is not set (the CLI exits non-zero). */
    getConfig(key: string, path?: boolean): Promise<ConfigValue>;
    /** Every key of the stack's config in one CLI process (`pulumi config --json --show-secrets`). */
    getAllConfig(): Promise<ConfigMap>;
    setConfig(key: string, value: ConfigValue): Promise<void>;
    /** Several keys in one CLI process (`pulumi config set-all`). */
    setAllConfig(config: ConfigMap): Promise<void>;
    removeConfig(key: string): Promise<void>;
    /** The outputs of the last successful deployment. */
    outputs(): Promise<OutputMap>;
    preview(opts?: { diff?: boolean; refresh?: boolean; runProgram?: boolean; onOutput?: (out: string) => void }): Promise<{ readonly changeSummary: OpMap }>;
    up(opts?: { diff?: boolean; refresh?: boolean; runProgram?: boolean; onOutput?: (out: string) => void; onEvent?: (event: EngineEvent) => void }): Promise<{ readonly summary: { readonly result: string }; readonly outputs: OutputMap }>;
}

/** What the stack says about itself, read before anything changes. */
export interface RollbackState {
    readonly stack: string;
    /** complinist:version in the stack file. */
    readonly configVersion: string;
    /** complinist:rollbackVersion in the stack file. */
    readonly configRollback?: string | undefined;
    /** Versions in complinist:releases. */
    readonly configReleases: ReadonlyArray<string>;
    readonly keepReleases: number;
    /** deployedVersion output of the last deployment (undefined: never deployed). */
    readonly deployedVersion?: string | undefined;
    /** releases output of the last deployment: what every host keeps. */
    readonly keptOnHosts?: ReadonlyArray<string> | undefined;
}

export interface RollbackPlan {
    readonly from: string;
    readonly to: string;
    /** Versions kept on the hosts after the rollback (retention deletes the others). */
    readonly keptAfter: string[];
    /** Versions on the hosts now that the rollback's retention will delete. */
    readonly dropped: string[];
    /** Versions retention newly keeps (uploaded by the same up; the target itself is never among them). */
    readonly added: string[];
    readonly warnings: string[];
}

export type PlanResult = { readonly ok: true; readonly plan: RollbackPlan } | { readonly ok: false; readonly message: string };

/** Pure: which version to roll back to, or why not. */
export function planRollback(s: RollbackState, to?: string): PlanResult {
    const refuse = (why: string): PlanResult => ({ ok: false, message: `rollback of stack '${s.stack}' refused: ${why}. Nothing was changed.` });
    if (s.deployedVersion === undefined || s.keptOnHosts === undefined) {
        return refuse("it has no deploy record (no deployedVersion/releases outputs: pulumi up has never completed), so nothing is known to be kept on its hosts");
    }
    const kept = s.keptOnHosts.join(", ");
    const from = s.deployedVersion;
    const target = to ?? s.configRollback;
    if (target === undefined) {
        return refuse(`no complinist:rollbackVersion is pinned; pass --to <version> with one of the releases kept on the hosts (${kept})`);
    }
    if (target === from) return refuse(`it already runs ${from}`);
    if (!s.keptOnHosts.includes(target)) {
        return refuse(`${target} is not kept on the hosts (kept: ${kept}); a rollback only switches to a release already there — deploy ${target} with pulumi up instead`);
    }
    if (!s.configReleases.includes(target)) {
        return refuse(`${target} is kept on the hosts but missing from complinist:releases in Pulumi.${s.stack}.yaml (add its artifact and sha256 back first)`);
    }
    const warnings: string[] = [];
    if (s.configVersion !== from) {
        warnings.push(`Pulumi.${s.stack}.yaml says version ${s.configVersion}, but the stack last deployed ${from}: rolling back from ${from} (the undeployed change is replaced)`);
    }
    const keptAfter = keptVersions({
        version: target,
        rollbackVersion: from,
        // keptVersions reads only the keys of releases.
        releases: Object.fromEntries(s.configReleases.map((v) => [v, {}])) as unknown as ParsedConfig["releases"],
        keepReleases: s.keepReleases,
    });
    const dropped = s.keptOnHosts.filter((v) => !keptAfter.includes(v));
    const added = keptAfter.filter((v) => !(s.keptOnHosts as ReadonlyArray<string>).includes(v));
    return { ok: true, plan: { from, to: target, keptAfter, dropped, added, warnings } };
}

function stringList(v: unknown): string[] | undefined {
    return Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : undefined;
}

/** Reads what planRollback needs from the stack's config (one CLI process) and outputs. */
export async function readRollbackState(stack: RollbackStack): Promise<RollbackState> {
    const config = await stack.getAllConfig();
    const get = (key: string): string | undefined => config[key]?.value;
    const configVersion = get(VERSION_KEY);
    if (configVersion === undefined) throw new Error(`stack '${stack.name}' has no ${VERSION_KEY}: is this the CompliNist project?`);
    const releasesText = get("complinist:releases");
    let configReleases: string[] = [];
    try {
        configReleases = releasesText ? Object.keys(JSON.parse(releasesText) as Record<string, unknown>) : [];
    } catch {
        configReleases = [];
    }
    const keep = Number(get("complinist:keepReleases"));
    const outputs = await stack.outputs();
    const deployed = outputs.deployedVersion?.value;
    return {
        stack: stack.name,
        configVersion,
        configRollback: get(ROLLBACK_KEY),
        configReleases,
        keepReleases: Number.isInteger(keep) && keep >= 2 ? keep : 3,
        deployedVersion: typeof deployed === "string" && deployed !== "" ? deployed : undefined,
        keptOnHosts: stringList(outputs.releases?.value),
    };
}

/** Engine operations that only read (the refresh, unchanged resources): anything else may change a host. */
const READ_ONLY_OPS: ReadonlySet<string> = new Set(["same", "read", "read-replacement", "refresh", "discard"]);

/** Counts the steps of an update that may change a host, from its engine events (Stack.up's onEvent). */
export function changeWatcher(): { readonly onEvent: (event: EngineEvent) => void; readonly started: () => number } {
    let started = 0;
    return {
        onEvent: (event) => {
            const op = event.resourcePreEvent?.metadata.op;
            if (op !== undefined && !READ_ONLY_OPS.has(op)) started++;
        },
        started: () => started,
    };
}
