import { parseArgs } from "util";
import type { EngineEvent, OpMap, StepEventMetadata } from "@pulumi/pulumi/automation";
import { STACK_NAME_PATTERN } from "../stacks/schema";
import { errorMessage } from "../stacks/errors";

/**
 * `npm run drift -- --stack <env>`: the runbook's "did someone change a host by
 * hand?" as `pulumi refresh --preview-only`. Every host-side resource is a dynamic
 * resource whose provider reads the host back (release directories, the `current`
 * link, the unit and env file, the service state), so a refresh preview lists
 * exactly what differs from the last deployment — without writing to the state.
 *
 * Automation API: `stack.previewRefresh()` runs `pulumi refresh --preview-only`
 * (the older `refresh({ previewOnly: true })` is deprecated in favour of it).
 */

/** The part of `automation.Stack` the drift check uses (test/unit/ops/drift.test.ts makes tsc prove the real Stack fits). */
export interface DriftStack {
    readonly name: string;
    previewRefresh(opts?: { runProgram?: boolean; onEvent?: (event: EngineEvent) => void; onOutput?: (out: string) => void }): Promise<{ readonly changeSummary: OpMap }>;
}

export const DRIFT_EXIT = {
    /** Every resource reads back as deployed. */
    clean: 0,
    /** The refresh could not run (usage, stack not found, a host unreachable, CLI error). */
    error: 1,
    /** At least one resource differs from the state: listed on stdout. Like `diff`, 2 means "differences found". */
    drift: 2,
} as const;

export interface DriftedResource {
    readonly urn: string;
    /** The resource's name (last URN segment). */
    readonly name: string;
    readonly type: string;
    /** What the refresh would do to the state: update (changed on the host) or delete (gone from the host). */
    readonly op: string;
    /** Top-level keys whose value differs, when the engine reports them. */
    readonly keys: string[];
    /** For a host's Activation: the version the host serves now, when it differs from the declared one. */
    readonly serves?: string;
    readonly declared?: string;
}

export const DRIFT_USAGE = `usage: npm run drift -- --stack <env>

Runs pulumi refresh --preview-only on <env> and lists every resource whose host state differs
from the last deployment (URN and changed keys). Nothing is written. Exit: 0 no drift,
2 drift found (listed), 1 the check could not run.`;

export function parseDriftArgs(argv: string[]): { stack: string; help: boolean } {
    let values: { stack?: string | undefined; help?: boolean | undefined };
    try {
        ({ values } = parseArgs({ args: argv, options: { stack: { type: "string", short: "s" }, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false }));
    } catch (e) {
        throw new Error(`${errorMessage(e)}\n${DRIFT_USAGE}`);
    }
    if (values.help) return { stack: "", help: true };
    if (values.stack === undefined || !STACK_NAME_PATTERN.test(values.stack)) throw new Error(`--stack <env> is required (dev, staging or prod)\n${DRIFT_USAGE}`);
    return { stack: values.stack, help: false };
}

/**
 * Ops that leave a resource as it is. A clean refresh summarizes as "same" only
 * (pulumi/providertest's assertrefresh.HasNoChanges relies on exactly that).
 */
const UNCHANGED = new Set(["same", "read"]);

function changedKeys(a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): string[] {
    const x = a ?? {};
    const y = b ?? {};
    return [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k])).sort();
}

/**
 * Pure: the drifted resources among a refresh preview's engine events. The engine
 * reports a refresh as steps of op "refresh" carrying the old and the read-back
 * state (drift = the outputs differ, or no new state: the resource is gone); newer
 * CLIs may report the outcome as update/delete with `diffs`. Both are handled.
 * The stack resource and providers carry no host state and are skipped.
 */
export function driftFromEvents(events: ReadonlyArray<EngineEvent>): DriftedResource[] {
    const byUrn = new Map<string, DriftedResource>();
    for (const e of events) {
        // A refresh step's pre-event has no read-back state yet: judge it by its outputs event.
        const pre = e.resourcePreEvent?.metadata;
        const m: StepEventMetadata | undefined = e.resOutputsEvent?.metadata ?? (pre?.op === "refresh" ? undefined : pre);
        if (m === undefined) continue;
        if (m.type === "pulumi:pulumi:Stack" || m.type.startsWith("pulumi:providers:")) continue;
        const reported = [...(m.diffs ?? []), ...Object.keys(m.detailedDiff ?? {}).map((k) => k.split(/[.[]/)[0] as string)];
        let op: string | undefined;
        let keys: string[] = [];
        if (m.op === "refresh") {
            if (m.new === undefined || m.new === null) {
                op = "delete";
            } else {
                keys = reported.length > 0 ? reported : changedKeys(m.old?.outputs, m.new.outputs);
                if (keys.length > 0) op = "update";
            }
        } else if (!UNCHANGED.has(m.op)) {
            keys = reported.length > 0 ? reported : changedKeys(m.old?.outputs, m.new?.outputs);
            // With --run-program a component's registered outputs come back as an "update" that changes nothing.
            if (keys.length > 0 || m.op !== "update") op = m.op;
        }
        if (op === undefined) continue;
        const prev = byUrn.get(m.urn);
        const serves = m.new?.outputs?.activeVersion;
        const declared = m.old?.outputs?.version ?? m.old?.inputs?.version;
        const switched = m.type.endsWith("complinist:Activation") && typeof serves === "string" && typeof declared === "string" && serves !== "" && serves !== declared;
        byUrn.set(m.urn, {
            urn: m.urn,
            name: m.urn.split("::").pop() ?? m.urn,
            type: m.type,
            op,
            keys: [...new Set([...(prev?.keys ?? []), ...keys])].sort(),
            ...(switched ? { serves, declared } : {}),
        });
    }
    return [...byUrn.values()].sort((a, b) => a.urn.localeCompare(b.urn));
}

/** Changes the summary counts beyond "unchanged": catches drift the events did not itemize. */
export function summaryChanges(summary: OpMap): number {
    return Object.entries(summary).reduce((n, [op, count]) => n + (UNCHANGED.has(op) ? 0 : (count ?? 0)), 0);
}

export function renderDrift(stack: string, drifted: ReadonlyArray<DriftedResource>, unlisted: number): string {
    if (drifted.length === 0 && unlisted === 0) return `stack ${stack}: no drift — every host reads back as last deployed.`;
    const lines = [`stack ${stack}: DRIFT — ${drifted.length + unlisted} resource(s) differ from the last deployment:`];
    for (const d of drifted) {
        lines.push(`  ${d.op.padEnd(7)} ${d.name}  (${d.type})${d.keys.length > 0 ? `  changed: ${d.keys.join(", ")}` : ""}`);
        lines.push(`          ${d.urn}`);
    }
    if (unlisted > 0) lines.push(`  ...and ${unlisted} more the engine counted but did not itemize (run: pulumi refresh --preview-only --diff --stack ${stack})`);
    for (const d of drifted.filter((x) => x.serves !== undefined)) {
        // The on-host emergency command (or a hand switch) made another release live.
        lines.push(
            `  ${d.name}: the host serves ${d.serves}, the stack declares ${d.declared} (an emergency rollback on the host?). ` +
                `To keep ${d.serves}: npm run rollback -- --stack ${stack} --to ${d.serves} (pins it in Pulumi.${stack.split("/").pop()}.yaml; commit that). ` +
                `To go back to ${d.declared}: pulumi up --stack ${stack}.`,
        );
    }
    lines.push(
        `Next: inspect the hosts (revisions.log, journalctl -u <service>); to restore the declared state run pulumi up --stack ${stack}; ` +
            `to accept what the hosts have instead run pulumi refresh --stack ${stack} and update the stack file.`,
    );
    return lines.join("\n");
}

/** The drift check; returns the process exit code (DRIFT_EXIT). */
export async function checkDrift(stack: DriftStack, io: { out(text: string): void; err(text: string): void }): Promise<number> {
    const events: EngineEvent[] = [];
    let summary: OpMap;
    try {
        // --run-program: the providers read with the current config (a rotated key works: ops/operator.ts CONVERGE).
        summary = (await stack.previewRefresh({ runProgram: true, onEvent: (e) => events.push(e) })).changeSummary;
    } catch (e) {
        io.err(`drift check of stack '${stack.name}' failed: ${errorMessage(e).trim()}`);
        return DRIFT_EXIT.error;
    }
    const drifted = driftFromEvents(events);
    const unlisted = Math.max(0, summaryChanges(summary) - drifted.length);
    io.out(renderDrift(stack.name, drifted, unlisted));
    return drifted.length + unlisted > 0 ? DRIFT_EXIT.drift : DRIFT_EXIT.clean;
}
