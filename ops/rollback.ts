import { parseArgs } from "util";
import type { ConfigValue, OpMap, OutputMap } from "@pulumi/pulumi/automation";
import { keptVersions } from "../stacks/config";
import { STACK_NAME_PATTERN, VERSION_PATTERN, type ParsedConfig } from "../stacks/schema";
import { errorMessage } from "../stacks/errors";

/**
 * `npm run rollback -- --stack <env> [--to <version>] [--yes]`: the runbook's
 * rollback as one command. It pins the target in the stack's config (the stack
 * file changes, so the rollback is reviewable and the next `pulumi up` keeps it),
 * shows the preview diff, confirms, and runs `pulumi up` — the Activation's health
 * gate then switches each host, batch by batch, uploading nothing.
 *
 * Decisions live here, against a narrow view of the Automation API's Stack, so they
 * are tested without the Pulumi CLI; scripts/rollback.ts only wires the real one.
 */

export const VERSION_KEY = "complinist:version";
export const ROLLBACK_KEY = "complinist:rollbackVersion";

/** The part of `automation.Stack` the rollback uses (test/unit/ops/rollback.test.ts makes tsc prove the real Stack fits). */
export interface RollbackStack {
    readonly name: string;
    /** Rejects when the key is not set (the CLI exits non-zero). */
    getConfig(key: string): Promise<ConfigValue>;
    setConfig(key: string, value: ConfigValue): Promise<void>;
    removeConfig(key: string): Promise<void>;
    /** The outputs of the last successful deployment. */
    outputs(): Promise<OutputMap>;
    preview(opts?: { diff?: boolean; onOutput?: (out: string) => void }): Promise<{ readonly changeSummary: OpMap }>;
    up(opts?: { diff?: boolean; onOutput?: (out: string) => void }): Promise<{ readonly summary: { readonly result: string }; readonly outputs: OutputMap }>;
}

/** How the helper talks to the operator. */
export interface OperatorIo {
    /** A terminal is attached (stdin and stdout are TTYs): confirmation can be asked. */
    readonly interactive: boolean;
    confirm(question: string): Promise<boolean>;
    /** Raw chunks of the CLI's output (preview diff, update progress), passed through as they come. */
    stream(chunk: string): void;
    out(text: string): void;
    err(text: string): void;
}

/**
 * Exit codes. Every refusal happens before the stack changes (config is put back
 * if it had already been pinned for the preview).
 */
export const ROLLBACK_EXIT = {
    /** Rolled back; the new state is printed. */
    ok: 0,
    /** Refused or aborted (usage, no target, version not kept, no TTY without --yes, preview refused, operator said no). Nothing changed. */
    refused: 1,
    /** `pulumi up` failed; the stack's config was restored. Hosts that failed their health gate switched back themselves. */
    upFailed: 2,
    /** `pulumi up` failed and the config could not be restored: the message says which commands restore it. */
    restoreFailed: 3,
} as const;

export interface RollbackArgs {
    readonly stack: string;
    readonly to?: string | undefined;
    readonly yes: boolean;
    readonly help: boolean;
}

export const ROLLBACK_USAGE = `usage: npm run rollback -- --stack <env> [--to <version>] [--yes]

Rolls <env> back to its pinned complinist:rollbackVersion (or to --to <version>, which must
be kept on the hosts), pins the version it leaves as the next rollback target, shows the
preview diff, asks for confirmation (--yes skips it; required without a terminal) and runs
pulumi up. Exit: 0 rolled back, 1 refused/aborted (nothing changed), 2 up failed (config
restored), 3 up failed and the config could not be restored.`;

export class UsageError extends Error {}

export function parseRollbackArgs(argv: string[]): RollbackArgs {
    let values: { stack?: string | undefined; to?: string | undefined; yes?: boolean | undefined; help?: boolean | undefined };
    try {
        ({ values } = parseArgs({
            args: argv,
            options: { stack: { type: "string", short: "s" }, to: { type: "string" }, yes: { type: "boolean", short: "y" }, help: { type: "boolean", short: "h" } },
            strict: true,
            allowPositionals: false,
        }));
    } catch (e) {
        throw new UsageError(`${errorMessage(e)}\n${ROLLBACK_USAGE}`);
    }
    if (values.help) return { stack: "", yes: false, help: true };
    if (values.stack === undefined || !STACK_NAME_PATTERN.test(values.stack)) throw new UsageError(`--stack <env> is required (dev, staging or prod)\n${ROLLBACK_USAGE}`);
    if (values.to !== undefined && !VERSION_PATTERN.test(values.to)) throw new UsageError(`--to ${JSON.stringify(values.to)} is not a version (letters, digits and . + _ -)\n${ROLLBACK_USAGE}`);
    return { stack: values.stack, to: values.to, yes: values.yes === true, help: false };
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

async function tryGetConfig(stack: RollbackStack, key: string): Promise<string | undefined> {
    try {
        return (await stack.getConfig(key)).value;
    } catch {
        return undefined;
    }
}

function stringList(v: unknown): string[] | undefined {
    return Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : undefined;
}

/** Reads what planRollback needs from the stack's config and outputs. */
export async function readRollbackState(stack: RollbackStack): Promise<RollbackState> {
    const configVersion = await tryGetConfig(stack, VERSION_KEY);
    if (configVersion === undefined) throw new Error(`stack '${stack.name}' has no ${VERSION_KEY}: is this the CompliNist project?`);
    const releasesText = await tryGetConfig(stack, "complinist:releases");
    let configReleases: string[] = [];
    try {
        configReleases = releasesText ? Object.keys(JSON.parse(releasesText) as Record<string, unknown>) : [];
    } catch {
        configReleases = [];
    }
    const keep = Number(await tryGetConfig(stack, "complinist:keepReleases"));
    const outputs = await stack.outputs();
    const deployed = outputs.deployedVersion?.value;
    return {
        stack: stack.name,
        configVersion,
        configRollback: await tryGetConfig(stack, ROLLBACK_KEY),
        configReleases,
        keepReleases: Number.isInteger(keep) && keep >= 2 ? keep : 3,
        deployedVersion: typeof deployed === "string" && deployed !== "" ? deployed : undefined,
        keptOnHosts: stringList(outputs.releases?.value),
    };
}

/** Puts complinist:version / rollbackVersion back as they were (unset stays unset). */
async function restore(stack: RollbackStack, version: string, rollback: string | undefined): Promise<void> {
    await stack.setConfig(VERSION_KEY, { value: version });
    if (rollback === undefined) await stack.removeConfig(ROLLBACK_KEY);
    else await stack.setConfig(ROLLBACK_KEY, { value: rollback });
}

function restoreCommands(stack: string, version: string, rollback: string | undefined): string {
    return [
        `pulumi config set ${VERSION_KEY} ${version} --stack ${stack}`,
        rollback === undefined ? `pulumi config rm ${ROLLBACK_KEY} --stack ${stack}` : `pulumi config set ${ROLLBACK_KEY} ${rollback} --stack ${stack}`,
    ].join(" && ");
}

function describeHosts(v: unknown): string {
    if (v === null || typeof v !== "object") return "unknown";
    return Object.entries(v as Record<string, { version?: unknown; healthy?: unknown }>)
        .map(([name, h]) => `${name} ${String(h?.version ?? "?")} ${h?.healthy === true ? "healthy" : "UNHEALTHY"}`)
        .join(", ");
}

/** The whole rollback; returns the process exit code (ROLLBACK_EXIT). */
export async function rollback(stack: RollbackStack, args: Pick<RollbackArgs, "to" | "yes">, io: OperatorIo): Promise<number> {
    // Decided first: a non-interactive run without --yes must not leave a half-done rollback behind.
    if (!args.yes && !io.interactive) {
        io.err(`rollback of stack '${stack.name}' refused: no terminal to confirm on; pass --yes to roll back without confirmation (CI). Nothing was changed.`);
        return ROLLBACK_EXIT.refused;
    }
    let state: RollbackState;
    try {
        state = await readRollbackState(stack);
    } catch (e) {
        io.err(`rollback of stack '${stack.name}' refused: could not read the stack: ${errorMessage(e).trim()}. Nothing was changed.`);
        return ROLLBACK_EXIT.refused;
    }
    const planned = planRollback(state, args.to);
    if (!planned.ok) {
        io.err(planned.message);
        return ROLLBACK_EXIT.refused;
    }
    const p = planned.plan;
    for (const w of p.warnings) io.err(`warning: ${w}`);
    io.out(`Rolling back stack ${stack.name}: ${p.from} -> ${p.to}. Next rollback target: ${p.from}. Releases kept after: ${p.keptAfter.join(", ")}.`);
    if (p.dropped.length > 0) io.out(`Retention will delete from the hosts: ${p.dropped.join(", ")}.`);
    if (p.added.length > 0) io.out(`Retention will also upload ${p.added.join(", ")} (in parallel; the switch does not wait for it).`);

    const oldVersion = state.configVersion;
    const oldRollback = state.configRollback;
    const putBack = async (why: string, code: number): Promise<number> => {
        try {
            await restore(stack, oldVersion, oldRollback);
            io.err(`${why} The stack's config was restored (version ${oldVersion}, rollbackVersion ${oldRollback ?? "unset"}).`);
            return code;
        } catch (e) {
            io.err(`${why} Restoring the config also failed (${errorMessage(e).trim()}); restore it by hand: ${restoreCommands(stack.name, oldVersion, oldRollback)}`);
            return ROLLBACK_EXIT.restoreFailed;
        }
    };

    try {
        await stack.setConfig(VERSION_KEY, { value: p.to });
        await stack.setConfig(ROLLBACK_KEY, { value: p.from });
    } catch (e) {
        return putBack(`rollback of stack '${stack.name}' refused: could not pin ${p.to} in the config: ${errorMessage(e).trim()}.`, ROLLBACK_EXIT.refused);
    }

    try {
        await stack.preview({ diff: true, onOutput: (o) => io.stream(o) });
    } catch (e) {
        return putBack(`rollback of stack '${stack.name}' refused: the preview failed (the promotion gate or the config refused ${p.to}): ${errorMessage(e).trim()}.`, ROLLBACK_EXIT.refused);
    }

    if (!args.yes) {
        const go = await io.confirm(`Roll back stack ${stack.name} from ${p.from} to ${p.to} as previewed above? Type "yes" to apply: `);
        if (!go) return putBack(`rollback of stack '${stack.name}' aborted by the operator; nothing was deployed.`, ROLLBACK_EXIT.refused);
    }

    let result: Awaited<ReturnType<RollbackStack["up"]>>;
    try {
        result = await stack.up({ diff: true, onOutput: (o) => io.stream(o) });
        if (result.summary.result !== "succeeded") throw new Error(`pulumi up ended with result '${result.summary.result}'`);
    } catch (e) {
        return putBack(
            `rollback of stack '${stack.name}' to ${p.to} FAILED: ${errorMessage(e).trim()}. Hosts whose health gate failed switched back to their previous release; check: pulumi stack output hosts --stack ${stack.name}.`,
            ROLLBACK_EXIT.upFailed,
        );
    }

    const deployed = result.outputs.deployedVersion?.value;
    io.out(
        [
            `Rolled back stack ${stack.name} to ${String(deployed ?? p.to)}.`,
            `  hosts:           ${describeHosts(result.outputs.hosts?.value)}`,
            `  deployedAt:      ${String(result.outputs.deployedAt?.value ?? "unknown")}`,
            `  deployedCommit:  ${String(result.outputs.deployedCommit?.value ?? "unknown")}`,
            `  rollback target: ${p.from} (npm run rollback -- --stack ${stack.name} returns to it)`,
            `Commit Pulumi.${stack.name}.yaml: it now pins version ${p.to} and rollbackVersion ${p.from}.`,
        ].join("\n"),
    );
    return ROLLBACK_EXIT.ok;
}
