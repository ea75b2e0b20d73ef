import { PassThrough } from "stream";
import { parseArgs } from "util";
import type { StackConfig } from "../stacks/config";
import { STACK_NAME_PATTERN } from "../stacks/schema";
import { hostLayout } from "../infra/render/layout";
import { LOG_SOURCES, renderLogSource, type LogSource } from "../infra/render/logs";
import type { Transport } from "../infra/transport";
import { TARGET_OPTIONS, TARGET_USAGE, type TargetArgs } from "./target";
import { terminalSafe } from "./terminalText";

/**
 * `npm run logs -- --stack <env> [--host NAME] [--lines N] [--follow]`: the runbook's "check the
 * logs" from every host at once — app.log, deploy.log and the journal of the service's units,
 * each line prefixed with its host and source. Read-only on the hosts.
 */

export const LOGS_EXIT = {
    ok: 0,
    /** A host could not be read (the others were still shown), or bad arguments, stack or key. */
    failed: 2,
} as const;

export const DEFAULT_LINES = 50;
/** Upper bound of a follow: a forgotten terminal must not hold host processes forever. */
export const FOLLOW_LIMIT_MS = 24 * 3600 * 1000;
const READ_TIMEOUT_MS = 60000;

export interface LogsArgs extends TargetArgs {
    readonly host?: string | undefined;
    readonly lines: number;
    readonly follow: boolean;
    readonly help: boolean;
}

export const LOGS_USAGE = `usage: npm run logs -- --stack <env> [--host NAME] [--lines N] [--follow] [--no-pulumi] [--key FILE]

Prints app.log, deploy.log and the journal of the service's units (journalctl -u '<service>*')
from every host of <env>, each line prefixed with its host and source.
  --host NAME     only this host (a name from the stack's hosts)
  --lines N       lines per source (default ${DEFAULT_LINES})
  --follow, -f    keep streaming new lines from every host at once until Ctrl-C
${TARGET_USAGE}
Exit: 0 every host read, 2 a host could not be read (the others are still shown) or bad arguments.`;

export function parseLogsArgs(argv: string[]): LogsArgs {
    let values: {
        stack?: string | undefined;
        host?: string | undefined;
        lines?: string | undefined;
        follow?: boolean | undefined;
        "no-pulumi"?: boolean | undefined;
        key?: string | undefined;
        help?: boolean | undefined;
    };
    try {
        ({ values } = parseArgs({
            args: argv,
            options: { ...TARGET_OPTIONS, host: { type: "string" }, lines: { type: "string", short: "n" }, follow: { type: "boolean", short: "f" } },
            strict: true,
            allowPositionals: false,
        }));
    } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\n${LOGS_USAGE}`);
    }
    if (values.help) return { stack: "", noPulumi: false, lines: DEFAULT_LINES, follow: false, help: true };
    if (values.stack === undefined || !STACK_NAME_PATTERN.test(values.stack)) throw new Error(`--stack <env> is required (dev, staging or prod)\n${LOGS_USAGE}`);
    const lines = values.lines === undefined ? DEFAULT_LINES : /^\d{1,6}$/.test(values.lines) ? Number(values.lines) : NaN;
    if (Number.isNaN(lines)) throw new Error(`--lines ${JSON.stringify(values.lines)} is not a line count (a whole number from 0 to 999999)\n${LOGS_USAGE}`);
    return { stack: values.stack, host: values.host, lines, follow: values.follow === true, noPulumi: values["no-pulumi"] === true, key: values.key, help: false };
}

/** The hosts to read: all, or the one --host names (an unknown name lists the known ones). */
export function selectHosts<T extends { readonly name: string }>(stack: string, hosts: ReadonlyArray<T>, only: string | undefined): T[] {
    if (only === undefined) return [...hosts];
    const found = hosts.filter((h) => h.name === only);
    if (found.length === 0) throw new Error(`stack '${stack}' has no host ${JSON.stringify(only)} (hosts: ${hosts.map((h) => h.name).join(", ")})`);
    return found;
}

/** Calls `onLine` for every complete line of the chunks fed to it; `flush` hands over an unterminated last line. */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: Buffer): void; flush(): void } {
    let rest = "";
    return {
        push(chunk: Buffer) {
            const parts = (rest + chunk.toString("utf8")).split("\n");
            rest = parts.pop() ?? "";
            for (const p of parts) onLine(p.replace(/\r$/, ""));
        },
        flush() {
            if (rest !== "") onLine(rest.replace(/\r$/, ""));
            rest = "";
        },
    };
}

export interface LogsTarget {
    readonly name: string;
    readonly transport: Transport;
}

export interface LogsIo {
    out(text: string): void;
    err(text: string): void;
}

/**
 * Reads (or follows) every source of every host. Without follow, output comes host by host,
 * source by source; followed, lines interleave as they arrive until `stop` aborts. A host that
 * fails is reported on stderr, prefixed with its name, and the others go on.
 */
export async function showLogs(
    c: Pick<StackConfig, "baseDir" | "service">,
    targets: ReadonlyArray<LogsTarget>,
    req: { readonly lines: number; readonly follow: boolean },
    io: LogsIo,
    stop?: AbortSignal,
): Promise<number> {
    const l = hostLayout(c.baseDir, c.service.name);
    const width = Math.max(...targets.map((t) => t.name.length));
    const sourceWidth = Math.max(...LOG_SOURCES.map((s) => s.length));
    const prefix = (host: string, source: LogSource) => `${host.padEnd(width)} ${source.padEnd(sourceWidth)} | `;
    // What the app logs (and a host answers) reaches the operator's terminal only through terminalSafe.
    const line = (host: string, source: LogSource, text: string) => io.out(prefix(host, source) + terminalSafe(text));
    let failed = false;
    const fail = (host: string, source: LogSource, why: string) => {
        failed = true;
        io.err(`${prefix(host, source)}cannot read: ${terminalSafe(why)}`);
    };

    if (!req.follow) {
        const results = await Promise.all(
            targets.map((t) =>
                Promise.all(
                    LOG_SOURCES.map((source) =>
                        t.transport
                            .exec(renderLogSource(l, source, { service: c.service.name, lines: req.lines, follow: false }), { timeoutMs: READ_TIMEOUT_MS })
                            .then((r) => ({ r }), (e: unknown) => ({ e: e instanceof Error ? e.message : String(e) })),
                    ),
                ),
            ),
        );
        targets.forEach((t, i) =>
            LOG_SOURCES.forEach((source, j) => {
                const res = results[i]?.[j];
                if (res === undefined) return;
                if ("e" in res) return fail(t.name, source, res.e);
                const text = res.r.stdout.replace(/\n$/, "");
                if (text !== "") for (const row of text.split("\n")) line(t.name, source, row);
                if (res.r.code !== 0) fail(t.name, source, `exit ${res.r.code} ${res.r.stderr.trim()}`);
            }),
        );
        return failed ? LOGS_EXIT.failed : LOGS_EXIT.ok;
    }

    // Followed: each reader's stdin stays open until stop; ending it tells the host side to quit.
    const inputs: PassThrough[] = [];
    const endAll = () => inputs.forEach((s) => s.end());
    stop?.addEventListener("abort", endAll, { once: true });
    await Promise.all(
        targets.flatMap((t) =>
            LOG_SOURCES.map(async (source) => {
                const input = new PassThrough();
                inputs.push(input);
                if (stop?.aborted) input.end();
                const lines = lineSplitter((row) => line(t.name, source, row));
                try {
                    const script = renderLogSource(l, source, { service: c.service.name, lines: req.lines, follow: true });
                    const r = await t.transport.exec(script, { stdin: input, onStdout: (chunk) => lines.push(chunk), timeoutMs: FOLLOW_LIMIT_MS });
                    lines.flush();
                    if (r.code !== 0) fail(t.name, source, `exit ${r.code} ${r.stderr.trim()}`);
                } catch (e) {
                    lines.flush();
                    fail(t.name, source, e instanceof Error ? e.message : String(e));
                }
            }),
        ),
    );
    stop?.removeEventListener("abort", endAll);
    return failed ? LOGS_EXIT.failed : LOGS_EXIT.ok;
}
