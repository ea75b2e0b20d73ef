import { parseArgs } from "util";
import type { ConfigValue, OpMap, OutputMap } from "@pulumi/pulumi/automation";
import { STACK_NAME_PATTERN } from "../stacks/schema";
import { type DeployEvent, describeFailure, describeFleetRollback, describeWatchRollback, type Notifier } from "./notify";
import { CONVERGE, describeHosts, describeWatch, errorText, type OperatorIo, rollbackCommand, tryGetConfig, UsageError } from "./operator";
import { type DeployRecord, dotenvText, recordFromOutputs, recordLines } from "./record";

/**
 * `npm run deploy -- --stack <env> [--yes] [--dotenv FILE]`: a deploy job's whole log.
 * It runs `pulumi up` (after the preview diff and a confirmation, unless --yes), posts
 * the runbook's notifications (started, completed or failed, and rolled back when a host's
 * error-rate watch switched back by itself), prints each host's error-rate watch figures,
 * and ends with the deploy record — `DEPLOYED_VERSION`, `DEPLOYED_COMMIT`, `DEPLOYED_AT`
 * from the stack outputs, i.e. the release that runs — printed last and written as a dotenv file for GitLab's
 * `artifacts:reports:dotenv`. After a failed update the record is the stack's last
 * successful deployment: what still runs.
 */

/** The part of `automation.Stack` the deploy uses (test/unit/ops/deploy.test.ts makes tsc prove the real Stack fits). */
export interface DeployStack {
    readonly name: string;
    getConfig(key: string, path?: boolean): Promise<ConfigValue>;
    outputs(): Promise<OutputMap>;
    preview(opts?: { diff?: boolean; refresh?: boolean; runProgram?: boolean; onOutput?: (out: string) => void }): Promise<{ readonly changeSummary: OpMap }>;
    up(opts?: { diff?: boolean; refresh?: boolean; runProgram?: boolean; onOutput?: (out: string) => void }): Promise<{ readonly summary: { readonly result: string }; readonly outputs: OutputMap }>;
}

export const DEPLOY_EXIT = {
    /** Deployed; the record is printed. */
    ok: 0,
    /** Not deployed, nothing changed: usage, no stack, no terminal without --yes, the preview failed, the operator said no. */
    refused: 1,
    /** `pulumi up` failed (the promotion gate, a host's health gate): hosts that failed switched back themselves. */
    upFailed: 2,
} as const;

export interface DeployArgs {
    readonly stack: string;
    readonly yes: boolean;
    readonly dotenv?: string | undefined;
    readonly help: boolean;
}

export const DEPLOY_USAGE = `usage: npm run deploy -- --stack <env> [--yes] [--dotenv FILE]

Deploys <env> with pulumi up: shows the preview diff and asks first (--yes skips both; required
without a terminal), notifies the stack's webhook (complinist:notify.webhookUrl) that the deployment
started and how it ended, and prints DEPLOYED_VERSION, DEPLOYED_COMMIT and DEPLOYED_AT last (from the
stack outputs), also written to FILE for GitLab's artifacts:reports:dotenv.
Exit: 0 deployed, 1 not deployed (nothing changed), 2 pulumi up failed.`;

/** `--dotenv FILE` shared by the deploy and rollback helpers. */
export const DOTENV_OPTION = { dotenv: { type: "string" } } as const;

export function parseDeployArgs(argv: string[]): DeployArgs {
    let values: { stack?: string | undefined; yes?: boolean | undefined; dotenv?: string | undefined; help?: boolean | undefined };
    try {
        ({ values } = parseArgs({
            args: argv,
            options: { stack: { type: "string", short: "s" }, yes: { type: "boolean", short: "y" }, help: { type: "boolean", short: "h" }, ...DOTENV_OPTION },
            strict: true,
            allowPositionals: false,
        }));
    } catch (e) {
        throw new UsageError(`${errorText(e)}\n${DEPLOY_USAGE}`);
    }
    if (values.help) return { stack: "", yes: false, help: true };
    if (values.stack === undefined || !STACK_NAME_PATTERN.test(values.stack)) throw new UsageError(`--stack <env> is required (dev, staging or prod)\n${DEPLOY_USAGE}`);
    return { stack: values.stack, yes: values.yes === true, dotenv: values.dotenv, help: false };
}

/** What the deploy and rollback helpers report through, besides the terminal. */
export interface Reporting {
    readonly notifier: Notifier;
    /** The commit this job deploys from (CI_COMMIT_SHA, else git). */
    readonly commit: string;
    now(): string;
    writeFile(file: string, text: string): void;
}

/** Prints the record as the log's last lines and writes the dotenv report. */
export function finishWithRecord(record: DeployRecord, dotenv: string | undefined, io: OperatorIo, reporting: Reporting): void {
    if (dotenv !== undefined) {
        try {
            reporting.writeFile(dotenv, dotenvText(record));
        } catch (e) {
            io.err(`warning: could not write the deploy record to ${dotenv}: ${errorText(e)}`);
        }
    }
    io.out(recordLines(record).join("\n"));
}

/** Host names from `complinist:hosts`, to find them in an error message. */
export async function hostNames(stack: Pick<DeployStack, "getConfig">): Promise<string[]> {
    try {
        const hosts = JSON.parse((await tryGetConfig(stack, "complinist:hosts")) ?? "[]") as Array<{ name?: unknown }>;
        return hosts.flatMap((h) => (typeof h?.name === "string" ? [h.name] : []));
    } catch {
        return [];
    }
}

/** The failure notification: the hosts and what was seen, from the error text. */
export async function failedEvent(stack: DeployStack, version: string, error: string, reporting: Reporting): Promise<DeployEvent> {
    const { hosts, saw } = describeFailure(error, await hostNames(stack));
    return { kind: "failed", stack: stack.name, version, commit: reporting.commit, at: reporting.now(), hosts, saw, rollback: rollbackCommand(stack.name) };
}

/**
 * The runbook's rollback notification when a host's error-rate watch switched back by itself
 * (the failure says `ROLLED BACK by the error-rate watch`); undefined for any other failure.
 */
export function watchRolledBackEvent(stackName: string, error: string, reporting: Pick<Reporting, "commit" | "now">): DeployEvent | undefined {
    const w = describeWatchRollback(error);
    if (w === undefined) return undefined;
    return { kind: "rolledBack", stack: stackName, from: w.from, to: w.to, commit: reporting.commit, at: reporting.now(), hosts: w.hosts.join(", "), reason: { by: "watch", figures: w.figures } };
}

/** The rollback notification when rollout.onFailure: rollback-all switched the fleet back; undefined when it did not. */
export function fleetRolledBackEvent(stackName: string, error: string, reporting: Pick<Reporting, "commit" | "now">): DeployEvent | undefined {
    const f = describeFleetRollback(error);
    if (f === undefined) return undefined;
    return { kind: "rolledBack", stack: stackName, from: f.from, to: f.to, commit: reporting.commit, at: reporting.now(), hosts: f.hosts.join(", "), reason: { by: f.by, failedHost: f.failedHost, fleet: f.fleet } };
}

/** The whole deployment; returns the process exit code (DEPLOY_EXIT). */
export async function deploy(stack: DeployStack, args: Pick<DeployArgs, "yes" | "dotenv">, io: OperatorIo, reporting: Reporting): Promise<number> {
    if (!args.yes && !io.interactive) {
        io.err(`deploy of stack '${stack.name}' refused: no terminal to confirm on; pass --yes to deploy without confirmation (CI). Nothing was changed.`);
        return DEPLOY_EXIT.refused;
    }
    const version = await tryGetConfig(stack, "complinist:version");
    if (version === undefined) {
        io.err(`deploy of stack '${stack.name}' refused: it has no complinist:version (is Pulumi.${stack.name}.yaml this project's stack file?). Nothing was changed.`);
        return DEPLOY_EXIT.refused;
    }
    if (!args.yes) {
        try {
            await stack.preview({ diff: true, ...CONVERGE, onOutput: (o) => io.stream(o) });
        } catch (e) {
            io.err(`deploy of stack '${stack.name}' refused: the preview failed: ${errorText(e)}. Nothing was changed.`);
            return DEPLOY_EXIT.refused;
        }
        if (!(await io.confirm(`Deploy ${version} to stack ${stack.name} as previewed above? Type "yes" to apply: `))) {
            io.err(`deploy of stack '${stack.name}' aborted by the operator; nothing was deployed.`);
            return DEPLOY_EXIT.refused;
        }
    }

    await reporting.notifier.send({ kind: "started", stack: stack.name, version, commit: reporting.commit, at: reporting.now() });
    let outputs: OutputMap;
    try {
        const result = await stack.up({ diff: true, ...CONVERGE, onOutput: (o) => io.stream(o) });
        if (result.summary.result !== "succeeded") throw new Error(`pulumi up ended with result '${result.summary.result}'`);
        outputs = result.outputs;
    } catch (e) {
        const error = errorText(e);
        io.err(`deploy of stack '${stack.name}' to ${version} FAILED: ${error}\nHosts whose health gate failed switched back to their previous release. Roll back: ${rollbackCommand(stack.name)}.`);
        await reporting.notifier.send(await failedEvent(stack, version, error, reporting));
        const rolledBack = watchRolledBackEvent(stack.name, error, reporting);
        if (rolledBack !== undefined) await reporting.notifier.send(rolledBack);
        const fleet = fleetRolledBackEvent(stack.name, error, reporting);
        if (fleet !== undefined) await reporting.notifier.send(fleet);
        const fleetOn = describeFleetRollback(error)?.fleet;
        let last: OutputMap = {};
        try {
            last = await stack.outputs();
        } catch (readError) {
            io.err(`warning: could not read the stack outputs: ${errorText(readError)}`);
        }
        io.out(
            fleetOn
                ? `The fleet is on the previous release ${fleetOn} (rollout.onFailure: rollback-all switched every host back): the deploy record below is what every host runs:`
                : `The deploy record below is the last successful deployment of ${stack.name}, which still runs:`,
        );
        finishWithRecord(recordFromOutputs(last), args.dotenv, io, reporting);
        return DEPLOY_EXIT.upFailed;
    }

    const record = recordFromOutputs(outputs);
    const hosts = describeHosts(outputs.hosts?.value);
    io.out(`Deployed stack ${stack.name}: ${record.version}. Hosts: ${hosts}.`);
    const watch = describeWatch(outputs.hosts?.value);
    if (watch.length > 0) io.out(["Error-rate watch, each host's last activation:", ...watch].join("\n"));
    await reporting.notifier.send({ kind: "completed", stack: stack.name, version: record.version, commit: record.commit, at: record.at, hosts });
    finishWithRecord(record, args.dotenv, io, reporting);
    return DEPLOY_EXIT.ok;
}
