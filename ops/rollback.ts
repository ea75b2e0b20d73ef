import { parseArgs } from "util";
import type { OutputMap } from "@pulumi/pulumi/automation";
import { STACK_NAME_PATTERN, VERSION_PATTERN } from "../stacks/schema";
import { DOTENV_OPTION, failedEvent, finishWithRecord, type Reporting } from "./deploy";
import { CONVERGE, describeHosts, errorText, type OperatorIo, UsageError } from "./operator";
import { recordFromOutputs } from "./record";
import { changeWatcher, planRollback, readRollbackState, ROLLBACK_KEY, type RollbackPlan, type RollbackStack, type RollbackState, VERSION_KEY } from "./rollbackPlan";
import { StackFile } from "./stackFile";
import { unifiedDiff } from "./textDiff";

/**
 * `npm run rollback -- --stack <env> [--to <version>] [--yes]`: the runbook's
 * rollback as one command. It pins the target in the stack's config (the stack
 * file changes, so the rollback is reviewable and the next `pulumi up` keeps it),
 * shows the preview diff and confirms (with --yes the update's own diff is the
 * preview: one engine run), and runs `pulumi up` — the Activation's health
 * gate then switches each host, batch by batch, uploading nothing. It then prints the
 * stack-file change to commit (a diff), notifies, and ends with the deploy record.
 *
 * The flow lives here and the decision in ops/rollbackPlan.ts, both against a narrow
 * view of the Automation API's Stack, so they are tested without the Pulumi CLI;
 * scripts/rollback.ts only wires the real one.
 */

/**
 * Exit codes. Every refusal happens before the stack changes (config is put back
 * if it had already been pinned for the preview).
 */
export const ROLLBACK_EXIT = {
    /** Rolled back; the new state is printed. */
    ok: 0,
    /** Refused or aborted (usage, no target, version not kept, no TTY without --yes, preview refused, operator said no, the update stopped before any change). Nothing changed. */
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
    /** Where to write the deploy record as a dotenv file (GitLab artifacts:reports:dotenv). */
    readonly dotenv?: string | undefined;
    readonly help: boolean;
}

export const ROLLBACK_USAGE = `usage: npm run rollback -- --stack <env> [--to <version>] [--yes] [--dotenv FILE]

Rolls <env> back to its pinned complinist:rollbackVersion (or to --to <version>, which must
be kept on the hosts), pins the version it leaves as the next rollback target, shows the
preview diff, asks for confirmation and runs pulumi up (refresh first). --yes (required
without a terminal) skips the separate preview and the question: the update prints each
change as it makes it, after the plan. Then it prints the change of Pulumi.<env>.yaml to commit, notifies the stack's webhook,
and prints DEPLOYED_VERSION, DEPLOYED_COMMIT and DEPLOYED_AT last (also written to FILE).
Exit: 0 rolled back, 1 refused/aborted (nothing changed), 2 up failed (config
restored), 3 up failed and the config could not be restored.`;

export function parseRollbackArgs(argv: string[]): RollbackArgs {
    let values: { stack?: string | undefined; to?: string | undefined; yes?: boolean | undefined; dotenv?: string | undefined; help?: boolean | undefined };
    try {
        ({ values } = parseArgs({
            args: argv,
            options: { stack: { type: "string", short: "s" }, to: { type: "string" }, yes: { type: "boolean", short: "y" }, help: { type: "boolean", short: "h" }, ...DOTENV_OPTION },
            strict: true,
            allowPositionals: false,
        }));
    } catch (e) {
        throw new UsageError(`${e instanceof Error ? e.message : String(e)}\n${ROLLBACK_USAGE}`);
    }
    if (values.help) return { stack: "", yes: false, help: true };
    if (values.stack === undefined || !STACK_NAME_PATTERN.test(values.stack)) throw new UsageError(`--stack <env> is required (dev, staging or prod)\n${ROLLBACK_USAGE}`);
    if (values.to !== undefined && !VERSION_PATTERN.test(values.to)) throw new UsageError(`--to ${JSON.stringify(values.to)} is not a version (letters, digits and . + _ -)\n${ROLLBACK_USAGE}`);
    return { stack: values.stack, to: values.to, yes: values.yes === true, dotenv: values.dotenv, help: false };
}

/** Puts complinist:version / rollbackVersion back as they were (unset stays unset). */
async function restore(stack: RollbackStack, version: string, rollback: string | undefined): Promise<void> {
    if (rollback === undefined) {
        await stack.setConfig(VERSION_KEY, { value: version });
        await stack.removeConfig(ROLLBACK_KEY);
    } else await stack.setAllConfig({ [VERSION_KEY]: { value: version }, [ROLLBACK_KEY]: { value: rollback } });
}

function restoreCommands(stack: string, version: string, rollback: string | undefined): string {
    return [
        `pulumi config set ${VERSION_KEY} ${version} --stack ${stack}`,
        rollback === undefined ? `pulumi config rm ${ROLLBACK_KEY} --stack ${stack}` : `pulumi config set ${ROLLBACK_KEY} ${rollback} --stack ${stack}`,
    ].join(" && ");
}

/** The stack file the rollback's pin is committed in (Pulumi.<stack>.yaml of the checkout). */
export interface StackFileAccess {
    readonly file: string;
    read(): string;
    write(text: string): void;
}

/**
 * The stack file as the rollback leaves it: the pin swapped, and the version left taken
 * off `acknowledgeRolledBack` (a stale acknowledgement would let the next pipeline roll
 * forward to it again). Written over what `pulumi config set` made of it, so the file in
 * the checkout is exactly the printed diff.
 */
export function rolledBackStackFile(original: string, file: string, plan: Pick<RollbackPlan, "from" | "to">): string {
    const f = new StackFile(original, file);
    f.set([VERSION_KEY], plan.to);
    f.set([ROLLBACK_KEY], plan.from);
    f.removeFromList(["complinist:acknowledgeRolledBack"], plan.from);
    return f.toString();
}

/** The whole rollback; returns the process exit code (ROLLBACK_EXIT). */
export async function rollback(
    stack: RollbackStack,
    args: Pick<RollbackArgs, "to" | "yes" | "dotenv">,
    io: OperatorIo,
    extras: { readonly reporting?: Reporting | undefined; readonly stackFile?: StackFileAccess | undefined } = {},
): Promise<number> {
    // Decided first: a non-interactive run without --yes must not leave a half-done rollback behind.
    if (!args.yes && !io.interactive) {
        io.err(`rollback of stack '${stack.name}' refused: no terminal to confirm on; pass --yes to roll back without confirmation (CI). Nothing was changed.`);
        return ROLLBACK_EXIT.refused;
    }
    let state: RollbackState;
    try {
        state = await readRollbackState(stack);
    } catch (e) {
        io.err(`rollback of stack '${stack.name}' refused: could not read the stack: ${errorText(e)}. Nothing was changed.`);
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

    let original: string | undefined;
    try {
        original = extras.stackFile?.read();
    } catch (e) {
        io.err(`warning: could not read ${extras.stackFile?.file}: ${errorText(e)}; the change to commit is printed as values only.`);
    }
    const oldVersion = state.configVersion;
    const oldRollback = state.configRollback;
    const putBack = async (why: string, code: number): Promise<number> => {
        try {
            await restore(stack, oldVersion, oldRollback);
            io.err(`${why} The stack's config was restored (version ${oldVersion}, rollbackVersion ${oldRollback ?? "unset"}).`);
            return code;
        } catch (e) {
            io.err(`${why} Restoring the config also failed (${errorText(e)}); restore it by hand: ${restoreCommands(stack.name, oldVersion, oldRollback)}`);
            return ROLLBACK_EXIT.restoreFailed;
        }
    };

    try {
        await stack.setAllConfig({ [VERSION_KEY]: { value: p.to }, [ROLLBACK_KEY]: { value: p.from } });
    } catch (e) {
        return putBack(`rollback of stack '${stack.name}' refused: could not pin ${p.to} in the config: ${errorText(e)}.`, ROLLBACK_EXIT.refused);
    }

    // On a terminal the operator confirms what the preview showed. With --yes (CI, an emergency) the
    // update's own --diff output is the preview: one engine run (one program run, one refresh)
    // instead of two, each change printed as the engine makes it, after the plan printed above.
    if (!args.yes) {
        try {
            await stack.preview({ diff: true, ...CONVERGE, onOutput: (o) => io.stream(o) });
        } catch (e) {
            return putBack(`rollback of stack '${stack.name}' refused: the preview failed (the promotion gate or the config refused ${p.to}): ${errorText(e)}.`, ROLLBACK_EXIT.refused);
        }
        const go = await io.confirm(`Roll back stack ${stack.name} from ${p.from} to ${p.to} as previewed above? Type "yes" to apply: `);
        if (!go) return putBack(`rollback of stack '${stack.name}' aborted by the operator; nothing was deployed.`, ROLLBACK_EXIT.refused);
    } else {
        io.out(`--yes: no separate preview; the update refreshes the hosts, then prints each change (--diff) as it makes it, every host through its health gate.`);
    }

    let result: Awaited<ReturnType<RollbackStack["up"]>>;
    const changes = changeWatcher();
    try {
        result = await stack.up({ diff: true, ...CONVERGE, onOutput: (o) => io.stream(o), onEvent: changes.onEvent });
        if (result.summary.result !== "succeeded") throw new Error(`pulumi up ended with result '${result.summary.result}'`);
    } catch (e) {
        if (changes.started() === 0) {
            return putBack(`rollback of stack '${stack.name}' refused: the update stopped before changing any host (the promotion gate or the config refused ${p.to}, or a host could not be read): ${errorText(e)}. Nothing was changed on the hosts.`, ROLLBACK_EXIT.refused);
        }
        const code = await putBack(
            `rollback of stack '${stack.name}' to ${p.to} FAILED: ${errorText(e)}. Hosts whose health gate failed switched back to their previous release; check: pulumi stack output hosts --stack ${stack.name}.`,
            ROLLBACK_EXIT.upFailed,
        );
        if (extras.reporting !== undefined) {
            await extras.reporting.notifier.send(await failedEvent(stack, p.to, errorText(e), extras.reporting));
            let last: OutputMap = {};
            try {
                last = await stack.outputs();
            } catch (readError) {
                io.err(`warning: could not read the stack outputs: ${errorText(readError)}`);
            }
            io.out(`The deploy record below is what ${stack.name} runs after the failed rollback:`);
            finishWithRecord(recordFromOutputs(last), args.dotenv, io, extras.reporting);
        }
        return code;
    }

    let change = `Commit Pulumi.${stack.name}.yaml: it now pins version ${p.to} and rollbackVersion ${p.from}.`;
    if (original !== undefined && extras.stackFile !== undefined) {
        try {
            const text = rolledBackStackFile(original, extras.stackFile.file, p);
            extras.stackFile.write(text);
            change = `Commit this change of ${extras.stackFile.file} (a merge request), or the next deploy rolls forward again:\n${unifiedDiff(original, text, extras.stackFile.file).trimEnd()}`;
        } catch (e) {
            io.err(`warning: could not write ${extras.stackFile.file} (${errorText(e)}); its config values are set, comments may differ.`);
        }
    }
    const deployed = result.outputs.deployedVersion?.value;
    io.out(
        [
            `Rolled back stack ${stack.name} to ${String(deployed ?? p.to)}.`,
            `  hosts:           ${describeHosts(result.outputs.hosts?.value)}`,
            `  deployedAt:      ${String(result.outputs.deployedAt?.value ?? "unknown")}`,
            `  deployedCommit:  ${String(result.outputs.deployedCommit?.value ?? "unknown")}`,
            `  rollback target: ${p.from} (npm run rollback -- --stack ${stack.name} returns to it)`,
            change,
        ].join("\n"),
    );
    if (extras.reporting !== undefined) {
        const record = recordFromOutputs(result.outputs);
        const hosts = describeHosts(result.outputs.hosts?.value);
        await extras.reporting.notifier.send({ kind: "rolledBack", stack: stack.name, from: p.from, to: p.to, commit: record.commit, at: record.at, hosts });
        finishWithRecord(record, args.dotenv, io, extras.reporting);
    }
    return ROLLBACK_EXIT.ok;
}
